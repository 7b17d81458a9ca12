"""The pipeline: the only code that knows message names or sends messages.

Per dataset: ``fetch_source → plan_load ─┬→ load_chunk ×N → finish_layer ×L → publish_dataset``.

- :mod:`~service.pipeline.messages`: the names, arguments and priorities;
  :mod:`~service.pipeline.broker`: the Dramatiq broker, sending, queue counts;
  :mod:`~service.pipeline.dead_letters`: dead-lettered messages, read and requeued;
- :mod:`~service.pipeline.steps`: the dispatch table, actor name → step;
- one module per step (:mod:`~service.pipeline.fetch`, :mod:`~service.pipeline.plan`,
  :mod:`~service.pipeline.chunk`, :mod:`~service.pipeline.finish`,
  :mod:`~service.pipeline.publish`, :mod:`~service.pipeline.failure`): the ledger's
  record of the step, the stage that does its work, and the messages that follow;
- :mod:`~service.pipeline.start` (a run), :mod:`~service.pipeline.refresh` (the scheduled
  check upstream) and :mod:`~service.pipeline.sweep` (re-driving stalled loads).
"""
