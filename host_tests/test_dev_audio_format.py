"""`tools.dev config` validates audio_format against what the firmware can
speak: "adpcm" passes, anything else is one error line before any board is
touched; the portal offers the same choices."""

from dev_cli import assert_one_line_error
from dev_cli import run_dev as dev

from firmware import codec, portal_page
from tools.dev import devconfig


def test_adpcm_is_a_valid_audio_format():
    devconfig.check({"audio_format": "adpcm"})
    assert devconfig.merge({}, {"audio_format": "adpcm"})["audio_format"] == "adpcm"


def test_unknown_audio_format_is_one_line_before_connecting(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"audio_format": "opus"}')
    assert_one_line_error(dev("config", "--port", str(tmp_path / "tty0"), "--config-file", str(cfg)),
                          "audio_format", "adpcm")


def test_config_portal_and_codec_agree_on_the_formats():
    assert set(devconfig.fwschema.CHOICES["audio_format"]) == set(codec.FORMATS) == {"pcm", "adpcm"}
    for fmt in codec.FORMATS:
        assert b"<option>%s</option>" % fmt.encode() in portal_page.PAGE
