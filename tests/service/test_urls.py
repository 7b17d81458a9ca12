import pytest

from service.errors import ConfigError
from service.urls import check_scheme, mask, mirrored


def test_mask_hides_passwords_only():
    assert mask("amqp://guest:secret@rabbit:5672/%2F") == "amqp://guest:***@rabbit:5672/%2F"
    assert mask("postgresql://geo:p%40ss@db/geoload") == "postgresql://geo:***@db/geoload"
    assert mask("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_mirror_must_be_http():
    with pytest.raises(ConfigError, match="GEOLOAD_MIRROR"):
        mirrored("https://example.org/a.zip", "ftp://mirror")


def test_https_only_unless_an_http_mirror_is_configured():
    check_scheme("https://example.org/a.zip", None)
    check_scheme("http://127.0.0.1:9/a.zip", "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="https"):
        check_scheme("http://example.org/a.zip", None)
