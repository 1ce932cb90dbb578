"""API keys (lib/serving/api_keys.py): only digests are kept, keys compared by digest."""

import pytest

from unified_assets.lib.serving import api_keys


def test_a_new_key_is_kept_only_as_its_digest(tmp_path):
    path = tmp_path / "online" / "api_keys"
    path.parent.mkdir()
    first, second = api_keys.add(path), api_keys.add(path)
    text = path.read_text()
    assert first not in text and second not in text
    digests = api_keys.load(path)
    assert digests == {api_keys.digest(first), api_keys.digest(second)}
    assert path.stat().st_mode & 0o777 == 0o600
    assert api_keys.allowed(digests, f"Bearer {first}")
    assert api_keys.allowed(digests, f"bearer   {second} ")
    for header in (None, "", first, f"Basic {first}", "Bearer ", f"Bearer {first}x"):
        assert not api_keys.allowed(digests, header)


def test_no_file_means_no_keys_and_a_malformed_file_is_an_error(tmp_path):
    assert api_keys.load(tmp_path / "absent") == frozenset()
    bad = tmp_path / "keys"
    bad.write_text("# ok\n" + "a" * 64 + "\nmy-plain-key\n")
    with pytest.raises(ValueError, match="line 3: not a sha256"):
        api_keys.load(bad)
