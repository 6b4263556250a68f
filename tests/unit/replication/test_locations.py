from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacloud.api.s3names import is_region
from datacloud.replication.locations import LocationError, load_credentials, split_location


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://127.0.0.1:9000/bucket", ("http://127.0.0.1:9000", "bucket", "")),
        ("http://127.0.0.1:9000/bucket/", ("http://127.0.0.1:9000", "bucket", "")),
        ("https://s3.fz.example/data/2024/raw", ("https://s3.fz.example", "data", "2024/raw/")),
        ("https://s3.fz.example/data/dir/", ("https://s3.fz.example", "data", "dir/")),
    ],
)
def test_split_location(text: str, expected: tuple[str, str, str]) -> None:
    assert split_location(text) == expected


@pytest.mark.parametrize(
    "text", ["bucket", "s3://x/b", "http://host", "http://host/", "http://host/b?x=1", "ftp://h/b"]
)
def test_split_location_refuses(text: str) -> None:
    with pytest.raises(LocationError):
        split_location(text)


@pytest.mark.parametrize(
    "netloc", ["AK:pa55w0rd@127.0.0.1:9000", "pa55w0rd@s3.fz.example", "AK:pa55w0rd@[::1]:9"]
)
def test_user_information_in_a_location_is_refused_without_being_repeated(netloc: str) -> None:
    with pytest.raises(LocationError) as refused:
        split_location(f"http://{netloc}/bucket/prefix")
    assert "pa55w0rd" not in str(refused.value)
    assert netloc.rpartition("@")[2] in str(refused.value)


SECRET = "s3cr3t/very+secret=="


def test_json_credentials(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"accessKeyId": "AK", "secretAccessKey": SECRET, "region": "cn-fj-1"}))
    creds, region = load_credentials(path)
    assert (creds.access_key_id, creds.secret_access_key, region) == ("AK", SECRET, "cn-fj-1")
    assert SECRET not in repr(creds)


def test_env_style_credentials(tmp_path: Path) -> None:
    path = tmp_path / "c.env"
    path.write_text(f"# centre fz\nexport AWS_ACCESS_KEY_ID=AK\nAWS_SECRET_ACCESS_KEY='{SECRET}'\n\n")
    creds, region = load_credentials(path)
    assert (creds.access_key_id, creds.secret_access_key, region) == ("AK", SECRET, "us-east-1")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"accessKeyId": "AK", "secretAccessKey": ', "not valid JSON"),
        ('["AK"]', "JSON object"),
        ('{"accessKeyId": "AK"}', "no secretAccessKey"),
        (f"secretAccessKey={SECRET}\n", "no accessKeyId"),
        (f"just some words {SECRET}\n", "not KEY=value"),
        # botocore refuses these before a request; the lean client sent them, and the store refused.
        (f'{{"accessKeyId": "AK", "secretAccessKey": "{SECRET}", "region": "fj.prod"}}', "region 'fj.prod'"),
        (f"accessKeyId=AK\nsecretAccessKey={SECRET}\nregion=华东 1\n", "must be a region name"),
        (f'{{"accessKeyId": "AK", "secretAccessKey": "{SECRET}\\n"}}', "secretAccessKey ends with a line"),
        (f'{{"accessKeyId": "A\\tK", "secretAccessKey": "{SECRET}"}}', "accessKeyId holds a control"),
    ],
)
def test_malformed_credentials(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad"
    path.write_text(content)
    with pytest.raises(LocationError, match=message) as caught:
        load_credentials(path)
    assert SECRET not in str(caught.value)


def test_missing_credentials_file(tmp_path: Path) -> None:
    with pytest.raises(LocationError, match="does not exist"):
        load_credentials(tmp_path / "nope.json")


@pytest.mark.parametrize("path", ["b/a//c", "b//x", "b/./x", "b/../x", "b/x/..", "b/x/.", "b//"])
def test_a_prefix_the_store_would_rename_or_refuse_is_refused(path: str) -> None:
    """versitygw keeps `a//c/k` as `a/c/k` and `./k` as `k`, and refuses `../k`: a sync of such a prefix
    would miss what was written under it, or fail on every key."""
    with pytest.raises(LocationError, match=r"empty, \. or \.\. path segment"):
        split_location(f"http://127.0.0.1:9000/{path}")


@pytest.mark.parametrize("path", ["b/...", "b/.x/", "b/x./", "b/a..b/c"])
def test_dots_inside_a_segment_are_plain_names(path: str) -> None:
    assert split_location(f"http://127.0.0.1:9000/{path}")[2].startswith(path.partition("/")[2])


@given(st.one_of(st.text(max_size=70), st.text(alphabet="aZ09-._/ 华\n", max_size=70)))
def test_a_region_is_taken_exactly_when_botocore_takes_it(region: str) -> None:
    from botocore.exceptions import InvalidRegionError
    from botocore.utils import validate_region_name

    try:
        validate_region_name(region)
        # Its `$` also matches before a final newline, and it takes an empty name: neither is a region.
        botocore_takes = bool(region) and not region.endswith("\n")
    except InvalidRegionError:
        botocore_takes = False
    assert is_region(region) == botocore_takes
