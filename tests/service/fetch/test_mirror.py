import pytest

from service.errors import ConfigError
from service.fetch.mirror import check_scheme, mirrored


def test_mirror_must_be_http():
    with pytest.raises(ConfigError, match="GEOLOAD_MIRROR"):
        mirrored("https://example.org/a.zip", "ftp://mirror")


def test_a_mirror_keeps_upstreams_path_under_its_own_prefix():
    assert mirrored("https://geodata.ucdavis.edu/gadm/x.zip?v=1", "http://10.0.0.5/geo/") == (
        "http://10.0.0.5/geo/gadm/x.zip?v=1")


def test_https_only_unless_an_http_mirror_is_configured():
    check_scheme("https://example.org/a.zip", None)
    check_scheme("http://127.0.0.1:9/a.zip", "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="https"):
        check_scheme("http://example.org/a.zip", None)
