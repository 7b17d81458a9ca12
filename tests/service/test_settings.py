from pathlib import Path

import pytest

from service import settings as config
from service.errors import ConfigError


def test_defaults_are_local_services():
    s = config.from_env({"HOME": "/home/x"})
    assert s.database_url == "postgresql://postgres@127.0.0.1:5432/geoload"
    assert s.broker_url.startswith("amqp://guest:guest@127.0.0.1:5672")
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.mirror is None and s.timezone_release == "2026c"
    assert s.dashboard_host == "127.0.0.1" and s.dashboard_port == 8181


def test_environment_overrides_and_empty_means_default():
    s = config.from_env({"GEOLOAD_CACHE_DIR": "/data/cache", "GEOLOAD_MIRROR": "",
                         "GEOLOAD_CHUNK_FEATURES": "500"})
    assert s.cache_dir == Path("/data/cache") and s.mirror is None
    assert s.chunk_features == 500


def test_bad_number_is_a_clear_error():
    with pytest.raises(ConfigError, match="wrong type"):
        config.from_env({"GEOLOAD_CHUNK_FEATURES": "many"})


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [name for name in config.setting_names() if f"`{name}`" not in readme]
    assert not missing, f"settings missing from README: {missing}"
