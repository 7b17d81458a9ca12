"""Scheduled refresh: load a dataset again only when upstream published a new version.

A dataset's *version* is its release tag (when the catalog pins one) plus
upstream's validator: the ETag, else the Last-Modified date. Upstream is asked
with a conditional GET carrying the validators of the last published load, so
an unchanged file costs one 304 and no body.

Delivery is at-least-once and nothing stops two schedulers from ticking, so
the decision to load is a claim: a row keyed on (dataset, version) in
``geoload.refreshes``. Only the check that inserted the key starts a run; a
second scheduler, a redelivered tick or ``enqueue --if-changed`` finds the key
taken and does nothing. A claim is handed on only when its run failed (the
next tick tries that version again) or when its claimer died before starting
the run (after :data:`STALE_CLAIM_S`).

Upstream without any validator can't tell versions of one release apart: such
a dataset is loaded once per release and then left alone (say so in the
result); ``python -m service.enqueue DATASET`` reloads it by hand.

The claims and the past loads it compares with are kept by :mod:`service.ledger.refreshes`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import psycopg

from service import catalog
from service.catalog import Dataset
from service.catalog.options import LoadOptions, resolve
from service.errors import ConfigError, GeoloadError, TransientError, UpstreamUnavailable
from service.fetch import http
from service.fetch.http import Limits, Validators
from service.fetch.mirror import source_url
from service.fetch.releases import release_for
from service.identity import worker_id
from service.ledger import refreshes, schema
from service.ledger.records import Known
from service.pipeline.start import start
from service.postgres import connect
from service.settings import Settings
from service.urls import mask

log = logging.getLogger(__name__)

#: A claim whose run never started (its claimer died in between) is taken over after this.
STALE_CLAIM_S = 600

#: Actions of a :class:`Decision`.
LOAD, UNCHANGED, TAKEN, ERROR = "load", "unchanged", "taken", "error"


@dataclass(frozen=True)
class Upstream:
    """What upstream says about a dataset's file now."""

    dataset: str
    url: str
    release: str | None
    etag: str | None
    last_modified: str | None
    not_modified: bool = False

    @property
    def version(self) -> str:
        return version_of(self.release, self.etag, self.last_modified)

    @property
    def validated(self) -> bool:
        return bool(self.etag or self.last_modified)


@dataclass(frozen=True)
class Decision:
    """What one check decided for one dataset, and why."""

    dataset: str
    action: str
    reason: str
    version: str | None = None
    run_id: str | None = None
    transient: bool = False
    schema: str = ""


@dataclass(frozen=True)
class Refreshed:
    """Every dataset's decision, and the run started for those that changed (if any)."""

    decisions: list[Decision]
    run_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "decisions": [asdict(d) for d in self.decisions]}


def version_of(release: str | None, etag: str | None, last_modified: str | None) -> str:
    """The claim key: ``<release>|etag:<etag>``, ``|last-modified:<date>`` or ``|unvalidated``."""
    if etag:
        validator = f"etag:{_strong(etag)}"
    elif last_modified:
        validator = f"last-modified:{last_modified}"
    else:
        validator = "unvalidated"
    return f"{release or ''}|{validator}"


def same_version(upstream: Upstream, load: Known) -> bool:
    """Whether ``load`` loaded what upstream serves now, judged by release and validator.

    Without any validator, one release is one version: nothing finer can be told.
    """
    if upstream.release != load.release:
        return False
    if upstream.etag:
        return _strong(upstream.etag) == _strong(load.etag or "")
    if upstream.last_modified:
        return upstream.last_modified == load.last_modified
    return True


def probe(settings: Settings, target: Target, published: Known | None) -> Upstream:
    """Ask upstream, conditionally on the last published load, what it serves now."""
    dataset = target.dataset
    release = release_for(dataset, settings)
    url = source_url(target.probed(settings, release), settings)
    previous = _validators(published, url) if published and published.release == release else None
    limits = Limits(settings.connect_timeout, settings.read_timeout, settings.max_download_bytes)
    try:
        now = http.probe(url, previous, limits=limits)
    except GeoloadError as exc:
        exc.where(dataset=dataset.name)
        raise
    return Upstream(dataset.name, mask(url), release, now.etag, now.last_modified,
                    not_modified=now.not_modified)


def check(settings: Settings, conn: psycopg.Connection, target: Target | Dataset) -> Decision:
    """Compare upstream's version with what was loaded (into the target's schema); no side
    effects."""
    target = _target(target)
    name, where = target.dataset.name, target.schema
    published = refreshes.last_published(conn, name, where)
    up = probe(settings, target, published)
    if up.not_modified:
        return Decision(name, UNCHANGED, "upstream answered 304 Not Modified to the "
                        f"validators of run {published.run_id if published else '?'}", up.version,
                        schema=where)
    if not up.validated:
        if refreshes.release_published(conn, name, up.release, where):
            return Decision(name, UNCHANGED,
                            "upstream sends neither ETag nor Last-Modified, so versions can't be "
                            f"told apart; release {up.release or '(none)'} is already published",
                            up.version, schema=where)
        return Decision(name, LOAD, "upstream sends no validator and release "
                        f"{up.release or '(none)'} was never published", up.version, schema=where)
    if published is not None and same_version(up, published):
        return Decision(name, UNCHANGED, f"same version as run {published.run_id}", up.version,
                        schema=where)
    busy = [k for k in refreshes.loading(conn, name, where) if same_version(up, k)]
    if busy:
        return Decision(name, UNCHANGED, f"run {busy[0].run_id} is loading this version",
                        up.version, busy[0].run_id, schema=where)
    was = (f"run {published.run_id} loaded "
           f"{version_of(published.release, published.etag, published.last_modified)}"
           if published else "nothing published yet")
    return Decision(name, LOAD, f"upstream serves {up.version}; {was}", up.version, schema=where)


def refresh(settings: Settings, conn: psycopg.Connection, broker: Any,
            chosen: Sequence[Target | Dataset], *, origin: str,
            strict: bool = False) -> Refreshed:
    """Check every target; start runs for those that changed and whose claim we won.

    ``conn`` is an autocommit connection to a database with geoload's schema. ``strict``
    loads fail on data warnings (the scheduler passes ``GEOLOAD_STRICT``). A run holds one
    load per dataset, so a dataset published into two schemas is refreshed by two runs.
    """
    schema.ensure(conn)
    by_key = {t.key: t for t in map(_target, chosen)}
    decisions = [_check_safely(settings, conn, t) for t in by_key.values()]
    decisions = [_claim(conn, d, f"{origin}@{worker_id()}") if d.action == LOAD else d
                 for d in decisions]
    won = [d for d in decisions if d.action == LOAD]
    started: dict[tuple[str, str], str] = {}
    for batch in _one_load_per_dataset(won):
        claims = [(d.dataset, _claim_key(d)) for d in batch]
        targets_ = [by_key[(d.dataset, d.schema)] for d in batch]
        try:
            run = start(settings, conn, broker, [t.dataset for t in targets_], origin=origin,
                        strict=strict, options=_enqueued(settings, targets_))
        except Exception:
            refreshes.release(conn, claims)
            raise
        refreshes.attach(conn, claims, run.run_id)
        started.update({(d.dataset, d.schema): run.run_id for d in batch})
    return Refreshed([replace(d, run_id=started[(d.dataset, d.schema)]) if d.action == LOAD
                      else d for d in decisions], next(iter(started.values()), None))


def by_hand(settings: Settings, conn: psycopg.Connection, datasets: list[Dataset],
            options: Mapping[str, LoadOptions]) -> list[Target]:
    """What ``geoload load --if-changed`` checks: each dataset named, with the options
    chosen for it (countries, levels, schema, by name); none named: what the scheduler
    would check (:func:`targets`)."""
    if not datasets:
        schema.ensure(conn)
        return targets(settings, conn)
    return [Target.of(d, "named on the command line", options.get(d.name)) for d in datasets]


#: ``GEOLOAD_REFRESH_DATASETS``'s word for "the datasets published at least once".
PUBLISHED = "published"


@dataclass(frozen=True)
class Target:
    """A dataset the scheduled refresh checks, the choices it is loaded with, and why it
    is on the list.

    ``options`` are those of the dataset's live load (countries, levels, schema), so that
    a refresh loads again what was chosen; None: the catalog's defaults. The release and
    URL are not kept from the live load: the refresh asks which release is current.
    """

    dataset: Dataset
    why: str
    options: LoadOptions | None = None

    @classmethod
    def of(cls, dataset: Dataset, why: str, options: LoadOptions | None) -> Target:
        """A target keeping only the choices a refresh loads again (countries, levels,
        schema): none at all is the catalog's defaults."""
        if options is None or not (options.countries or options.levels or options.schema):
            return cls(dataset, why)
        return cls(dataset, why, LoadOptions(countries=options.countries,
                                             levels=options.levels, schema=options.schema))

    @property
    def schema(self) -> str:
        return (self.options.schema if self.options else None) or ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.dataset.name, self.schema)

    @property
    def label(self) -> str:
        """``gadm``, or ``gadm (countries NPL · schema mine)``."""
        described = self.options.describe() if self.options else ""
        return f"{self.dataset.name} ({described})" if described else self.dataset.name

    def probed(self, settings: Settings, release: str | None) -> Dataset:
        """The dataset as this target loads it, with ``release``; loaded by country, the
        first country's file stands for them all (GADM publishes them together)."""
        opts = self.options or LoadOptions()
        fixed = resolve(self.dataset, settings, release=release, levels=opts.levels,
                        schema=opts.schema, countries=opts.countries)
        applied = fixed.apply(self.dataset)
        return fixed.part(applied, fixed.countries[0]) if fixed.countries else applied

    def enqueued(self, settings: Settings) -> LoadOptions | None:
        """The options a refresh run records: the kept choices, the current release."""
        if self.options is None:
            return None
        return resolve(self.dataset, settings, release=release_for(self.dataset, settings),
                       levels=self.options.levels, schema=self.options.schema,
                       countries=self.options.countries)


def targets(settings: Settings, conn: psycopg.Connection) -> list[Target]:
    """What the scheduled refresh checks: ``GEOLOAD_REFRESH_DATASETS`` (dataset names, or
    ``published`` for every live load, in every schema, with the options it was loaded
    with); empty: nothing (refresh off).

    A load of a user's own file (``--source``) is not refreshed: it has no upstream. An
    unknown name is a :class:`~service.errors.UnknownDataset` naming the closest one.
    """
    chosen: dict[tuple[str, str], Target] = {}
    for word in settings.refresh_datasets:
        if word == PUBLISHED:
            for live in refreshes.published(conn):
                target = _published_target(settings, live)
                if target is not None:
                    chosen.setdefault(target.key, target)
        else:
            for dataset in catalog.resolve([word]):
                chosen.setdefault((dataset.name, ""),
                                  Target(dataset, "named in GEOLOAD_REFRESH_DATASETS"))
    return list(chosen.values())


def _published_target(settings: Settings, live: refreshes.Published) -> Target | None:
    """The live load as a target; None for a dataset the catalog dropped or a user's file."""
    if live.dataset not in catalog.DATASETS:
        return None
    options = LoadOptions.from_json(live.options)
    if options is not None and options.source:
        return None
    target = Target.of(catalog.get(live.dataset), "published at least once", options)
    return replace(target, why=f"{target.why}, with these choices") if target.options \
        else target


def _target(item: Target | Dataset) -> Target:
    return item if isinstance(item, Target) else Target(item, "named")


def _one_load_per_dataset(won: list[Decision]) -> list[list[Decision]]:
    """Split the decisions to load into runs, each with at most one load per dataset."""
    batches: list[list[Decision]] = []
    for d in won:
        batch = next((b for b in batches if all(x.dataset != d.dataset for x in b)), None)
        if batch is None:
            batches.append([d])
        else:
            batch.append(d)
    return batches


def _claim_key(decision: Decision) -> str:
    """The claim's version: upstream's version, and the schema when it is a user's, so that
    one version loaded into two schemas is two claims."""
    return f"{decision.version}@{decision.schema}" if decision.schema else str(decision.version)


def tick(settings: Settings, broker: Any, *, origin: str = "scheduler") -> dict[str, Any]:
    """The scheduler's periodic check of what :func:`targets` chose.

    Raises when upstream was unreachable for some dataset, so that Dramatiq
    retries the tick; what it already decided stands, since claims are idempotent.
    """
    with connect(settings, autocommit=True, application_name="geoload-refresh") as conn:
        schema.ensure(conn)
        chosen = targets(settings, conn)
        if not chosen:
            log.info("refresh: nothing to check (GEOLOAD_REFRESH_DATASETS=%r)",
                     ",".join(settings.refresh_datasets))
            return {"status": "off", "datasets": [],
                    "reason": "GEOLOAD_REFRESH_DATASETS is empty" if not
                    settings.refresh_datasets else "no dataset published yet"}
        outcome = refresh(settings, conn, broker, chosen, origin=origin, strict=settings.strict)
    for d in outcome.decisions:
        log.log(logging.WARNING if d.action == ERROR else logging.INFO, "refresh %s: %s%s (%s)",
                d.dataset, d.action, f" run {d.run_id}" if d.run_id else "", d.reason)
    failed = [d for d in outcome.decisions if d.action == ERROR and d.transient]
    if failed:
        raise UpstreamUnavailable("; ".join(f"{d.dataset}: {d.reason}" for d in failed),
                                  hint="the check is retried; runs already started stand")
    return outcome.as_json()


def next_check(settings: Settings) -> Any:
    """When the scheduler checks next (a pendulum datetime in this process's local time,
    which is the scheduler's when they share a timezone, as in compose)."""
    import pendulum

    return schedule(settings).next_valid_date(pendulum.now())


def schedule(settings: Settings) -> Any:
    """``GEOLOAD_REFRESH_CRON`` parsed for periodiq, or a :class:`ConfigError` naming it."""
    from periodiq import cron

    try:
        return cron(settings.refresh_cron)
    except (ValueError, IndexError, KeyError) as exc:
        raise ConfigError(f"GEOLOAD_REFRESH_CRON={settings.refresh_cron!r} is not a cron "
                          f"expression ({exc})",
                          hint='use five fields, minute hour day month weekday, e.g. '
                               '"17 3 * * *"') from exc


def _check_safely(settings: Settings, conn: psycopg.Connection, target: Target) -> Decision:
    """One dataset's upstream being down must not stop the others' refresh."""
    try:
        return check(settings, conn, target)
    except GeoloadError as exc:
        return Decision(target.dataset.name, ERROR, str(exc.where(dataset=target.dataset.name)),
                        transient=isinstance(exc, TransientError), schema=target.schema)


def _enqueued(settings: Settings, chosen: list[Target]) -> dict[str, LoadOptions]:
    """Each target's options as its run records them (targets with the catalog's defaults
    are resolved by :func:`start` itself)."""
    out = {t.dataset.name: t.enqueued(settings) for t in chosen}
    return {name: opts for name, opts in out.items() if opts is not None}


def _claim(conn: psycopg.Connection, decision: Decision, claimer: str) -> Decision:
    """Take the (dataset, version) key: the decision stands, or says who holds the key."""
    holder = refreshes.claim(conn, decision.dataset, _claim_key(decision), claimer,
                             STALE_CLAIM_S)
    if holder is None:
        return decision
    where = (f"run {holder.run_id}" if holder.run_id
             else f"{holder.claimed_by}, which is starting a run")
    return replace(decision, action=TAKEN, run_id=holder.run_id,
                   reason=f"{decision.reason}; already taken by {where}")


def _validators(load: Known, url: str) -> Validators:
    return Validators(url=load.source_url or mask(url), etag=load.etag,
                      last_modified=load.last_modified, size=load.bytes or 0,
                      sha256=load.sha256 or "")


def _strong(etag: str) -> str:
    """Compare entity tags weakly: a proxy may mark ``"x"`` as ``W/"x"``."""
    return etag.removeprefix("W/")
