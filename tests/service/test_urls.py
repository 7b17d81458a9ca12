from service.urls import mask


def test_mask_hides_passwords_only():
    assert mask("amqp://guest:secret@rabbit:5672/%2F") == "amqp://guest:***@rabbit:5672/%2F"
    assert mask("postgresql://geo:p%40ss@db/geoload") == "postgresql://geo:***@db/geoload"
    assert mask("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
