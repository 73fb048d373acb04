"""stage_zip and stage_files: every rejected archive leaves nothing outside the staging folder."""

from __future__ import annotations

import dataclasses
import io
import stat
import zipfile
from pathlib import Path

import pytest

from app.uploads.archive import stage_files, stage_zip
from app.uploads.images import UploadLimits, UploadProblem, commit_images
from tests.uploads.helpers import (
    LIMITS,
    build_zip,
    files_outside,
    image_bytes,
    patch_member_headers,
    png_claiming_size,
)


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The uploaded zip's path, the staging folder and the storage folder."""
    return tmp_path / "images.zip", tmp_path / "staging", tmp_path / "storage"


def rejected(
    places: tuple[Path, Path, Path],
    members: list[tuple[str | zipfile.ZipInfo, bytes]],
    limits: UploadLimits = LIMITS,
) -> UploadProblem:
    """Stage a zip that must be rejected; check that nothing leaked out of staging."""
    zip_path, staging, storage = places
    if members:
        build_zip(zip_path, members)
    with pytest.raises(UploadProblem) as caught:
        stage_zip(zip_path, "images.zip", staging, limits)
    assert files_outside(zip_path.parent, zip_path, staging) == []
    assert not storage.exists()
    return caught.value


def symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("../x.png", "member '../x.png' leaves the archive; remove the path's '..' parts"),
        ("a/../../x.png", "member 'a/../../x.png' leaves the archive"),
        ("a\\..\\..\\x.png", "leaves the archive"),
        ("/x.png", "member '/x.png' is an absolute path"),
        ("C:\\x.png", "member 'C:\\x.png' is an absolute path"),
        ("c:/x.png", "member 'c:/x.png' is an absolute path"),
        ("\\\\server\\share\\x.png", "member '\\\\server\\share\\x.png' is an absolute path"),
    ],
)
def test_zip_escaping_paths(places: tuple[Path, Path, Path], member: str, expected: str) -> None:
    problem = rejected(places, [("ok.png", image_bytes()), (member, image_bytes())])
    assert expected in str(problem)
    assert problem.member == member
    assert problem.status_code == 422


def test_zip_symlink_member(places: tuple[Path, Path, Path]) -> None:
    problem = rejected(places, [("ok.png", image_bytes()), (symlink("link.png", "/etc"), b"/etc")])
    assert "member 'link.png' is a symbolic link" in str(problem)


def test_zip_fifo_member(places: tuple[Path, Path, Path]) -> None:
    info = zipfile.ZipInfo("pipe.png")
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    problem = rejected(places, [("ok.png", image_bytes()), (info, b"")])
    assert "member 'pipe.png' is not a regular file" in str(problem)


def test_zip_encrypted_member(places: tuple[Path, Path, Path]) -> None:
    zip_path = build_zip(places[0], [("ok.png", image_bytes()), ("secret.png", image_bytes())])
    patch_member_headers(zip_path, "secret.png", set_flags=0x1)
    problem = rejected(places, [])
    assert "member 'secret.png' is encrypted" in str(problem)
    assert "without a password" in str(problem)


def test_zip_too_many_members(places: tuple[Path, Path, Path]) -> None:
    limits = dataclasses.replace(LIMITS, max_members=3)
    members: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        (f"{n}.png", image_bytes()) for n in range(5)
    ]
    problem = rejected(places, members, limits)
    assert "images.zip has 5 entries, over the 3 entry limit" in str(problem)
    assert "REALUNIFY_MAX_ARCHIVE_MEMBERS" in str(problem)
    assert problem.limit == "REALUNIFY_MAX_ARCHIVE_MEMBERS"
    assert problem.status_code == 413


def test_zip_declared_size_over_limit(
    places: tuple[Path, Path, Path],
) -> None:
    limits = dataclasses.replace(LIMITS, max_unpacked_bytes=1024 * 1024)
    # Two megabytes of zeros deflate to about two kilobytes.
    problem = rejected(
        places, [("ok.png", image_bytes()), ("zeros.png", bytes(2 * 1024**2))], limits
    )
    assert "unpacks to 2 MiB, over the 1 MiB limit (REALUNIFY_MAX_UNPACKED_BYTES)" in str(problem)
    assert problem.status_code == 413
    assert not places[1].exists()


def test_zip_member_larger_than_declared(
    places: tuple[Path, Path, Path],
) -> None:
    zip_path = build_zip(places[0], [("ok.png", image_bytes()), ("liar.png", bytes(100_000))])
    patch_member_headers(zip_path, "liar.png", file_size=100)
    problem = rejected(places, [])
    assert "member 'liar.png'" in str(problem)
    assert problem.member == "liar.png"
    # zipfile itself stops at the declared size, so nothing larger reached the disk.
    staged_sizes = [path.stat().st_size for path in places[1].iterdir()]
    assert max(staged_sizes) <= len(image_bytes())


def test_zip_byte_counter_stops_overrun(
    places: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's zipfile stops at the declared size; the counter guards against one that does not."""
    build_zip(places[0], [("bomb.png", image_bytes())])
    declared = len(image_bytes())

    def open_unbounded(
        self: zipfile.ZipFile, name: object, *args: object, **kwargs: object
    ) -> io.BytesIO:
        return io.BytesIO(bytes(declared + 10 * 1024**2))

    monkeypatch.setattr(zipfile.ZipFile, "open", open_unbounded)
    problem = rejected(places, [])
    assert "member 'bomb.png' unpacks to more than the" in str(problem)
    assert "its header declares" in str(problem)
    assert problem.limit == "REALUNIFY_MAX_UNPACKED_BYTES"
    assert all(path.stat().st_size <= declared for path in places[1].iterdir())


def test_zip_non_image_member(places: tuple[Path, Path, Path]) -> None:
    problem = rejected(places, [("ok.png", image_bytes()), ("notes.png", b"just some text\n")])
    assert "member 'notes.png' is not a PNG, JPEG or WebP image" in str(problem)
    assert problem.member == "notes.png"


def test_zip_gif_named_png(places: tuple[Path, Path, Path]) -> None:
    problem = rejected(places, [("ok.png", image_bytes()), ("fake.png", image_bytes(fmt="GIF"))])
    assert "member 'fake.png' is not a PNG, JPEG or WebP image but a GIF image" in str(problem)


def test_zip_truncated(places: tuple[Path, Path, Path]) -> None:
    zip_path = build_zip(places[0], [("a.png", image_bytes()), ("b.png", image_bytes())])
    zip_path.write_bytes(zip_path.read_bytes()[:-30])
    problem = rejected(places, [])
    assert str(problem).startswith("images.zip is truncated or not a zip archive")


def test_zip_not_an_archive(places: tuple[Path, Path, Path]) -> None:
    places[0].write_bytes(image_bytes())
    problem = rejected(places, [])
    assert str(problem).startswith("images.zip is truncated or not a zip archive")


def test_zip_member_bad_crc(places: tuple[Path, Path, Path]) -> None:
    zip_path = build_zip(
        places[0], [("a.png", image_bytes()), ("b.png", bytes(1000))], zipfile.ZIP_STORED
    )
    data = bytearray(zip_path.read_bytes())
    start = data.find(bytes(1000))
    data[start + 500] = 1
    zip_path.write_bytes(bytes(data))
    problem = rejected(places, [])
    assert "images.zip is truncated or damaged at member 'b.png'" in str(problem)
    assert "CRC" in str(problem)


def test_zip_over_archive_limit(places: tuple[Path, Path, Path]) -> None:
    limits = dataclasses.replace(LIMITS, max_archive_bytes=100)
    problem = rejected(places, [("a.png", image_bytes())], limits)
    assert "images.zip is" in str(problem)
    assert "over the 100 bytes limit (REALUNIFY_MAX_ARCHIVE_BYTES)" in str(problem)
    assert problem.status_code == 413


def test_zip_pixel_bomb(places: tuple[Path, Path, Path]) -> None:
    problem = rejected(
        places, [("ok.png", image_bytes()), ("bomb.png", png_claiming_size(100_000, 100_000))]
    )
    assert "member 'bomb.png'" in str(problem)
    assert "REALUNIFY_MAX_IMAGE_PIXELS" in str(problem)
    assert problem.limit == "REALUNIFY_MAX_IMAGE_PIXELS"


def test_zip_image_over_pixel_limit(places: tuple[Path, Path, Path]) -> None:
    limits = dataclasses.replace(LIMITS, max_image_pixels=1000)
    problem = rejected(places, [("big.png", image_bytes((40, 30)))], limits)
    assert "member 'big.png' is 40 x 30 pixels, over the 1,000 pixel limit" in str(problem)


def test_zip_duplicate_normalised_names(
    places: tuple[Path, Path, Path],
) -> None:
    problem = rejected(places, [("imgs/a.png", image_bytes()), ("./imgs\\a.png", image_bytes())])
    assert "member './imgs\\a.png' and member 'imgs/a.png' both have the name 'imgs/a.png'" in str(
        problem
    )


def test_zip_without_images(places: tuple[Path, Path, Path]) -> None:
    problem = rejected(places, [("__MACOSX/._a.png", b"x"), ("result.json", b"[]")])
    assert "images.zip contains no PNG, JPEG or WebP images" in str(problem)


def test_zip_macos_metadata_and_root(
    places: tuple[Path, Path, Path],
) -> None:
    zip_path, staging, _ = places
    build_zip(
        zip_path,
        [
            ("run/", b""),
            ("run/0001.png", image_bytes()),
            ("run/imgs/0002.jpg", image_bytes(fmt="JPEG")),
            ("run/imgs/0003.webp", image_bytes(fmt="WEBP")),
            ("run/UEG_direct.json", b"[]"),
            ("run/.DS_Store", b"\x00\x00\x00\x01Bud1"),
            ("run/imgs/Thumbs.db", b"\xd0\xcf"),
            ("__MACOSX/run/._0001.png", b"\x00\x05\x16\x07"),
        ],
    )
    staged = stage_zip(zip_path, "images.zip", staging, LIMITS)

    assert staged.stripped_root == "run"
    assert sorted(staged.images) == ["0001.png", "imgs/0002.jpg", "imgs/0003.webp"]
    assert {name: image.media_type for name, image in staged.images.items()} == {
        "0001.png": "image/png",
        "imgs/0002.jpg": "image/jpeg",
        "imgs/0003.webp": "image/webp",
    }
    assert list(staged.result_files) == ["UEG_direct.json"]
    assert staged.result_files["UEG_direct.json"].read_bytes() == b"[]"
    assert sorted(staged.ignored) == [
        "__MACOSX/run/._0001.png",
        "run/",
        "run/.DS_Store",
        "run/imgs/Thumbs.db",
    ]
    image = staged.images["0001.png"]
    assert (image.width, image.height, image.size) == (8, 8, len(image_bytes()))
    assert image.staged_path.parent == staging.resolve()
    assert files_outside(zip_path.parent, zip_path, staging) == []


def test_zip_top_level_files_keep_names(places: tuple[Path, Path, Path]) -> None:
    zip_path, staging, _ = places
    build_zip(zip_path, [("a.png", image_bytes()), ("imgs/b.png", image_bytes())])
    staged = stage_zip(zip_path, "images.zip", staging, LIMITS)
    assert staged.stripped_root is None
    assert sorted(staged.images) == ["a.png", "imgs/b.png"]


def test_find_reference_forms(
    places: tuple[Path, Path, Path],
) -> None:
    zip_path, staging, _ = places
    build_zip(
        zip_path,
        [
            ("out/imgs/0001.png", image_bytes(color=(1, 2, 3))),
            ("out/x/shared.png", image_bytes(color=(4, 5, 6))),
            ("out/y/shared.png", image_bytes(color=(7, 8, 9))),
        ],
    )
    staged = stage_zip(zip_path, "images.zip", staging, LIMITS)
    first = staged.images["imgs/0001.png"]

    assert staged.find("imgs/0001.png") is first
    assert staged.find("out/imgs/0001.png") is first
    assert staged.find("./out\\imgs\\0001.png") is first
    assert staged.find("/out/imgs/0001.png") is first
    assert staged.find("/home/me/results/0001.png") is first
    assert staged.find("x/shared.png") is staged.images["x/shared.png"]
    assert staged.find("shared.png") is None
    assert staged.find("elsewhere/shared.png") is None
    assert staged.find("missing.png") is None
    assert staged.find("../imgs/0001.png") is None
    assert staged.find("") is None


def test_commit_images_idempotent(
    places: tuple[Path, Path, Path],
) -> None:
    zip_path, staging, storage = places
    same = image_bytes(color=(9, 9, 9))
    build_zip(
        zip_path, [("a.png", same), ("b/a-copy.png", same), ("c.jpg", image_bytes(fmt="JPEG"))]
    )
    staged = stage_zip(zip_path, "images.zip", staging, LIMITS)

    commit_images(staged, storage)
    commit_images(staged, storage)

    stored = sorted(path.relative_to(storage).as_posix() for path in storage.rglob("*.*"))
    png = staged.images["a.png"].sha256
    jpeg = staged.images["c.jpg"].sha256
    assert stored == sorted([f"images/{png[:2]}/{png}.png", f"images/{jpeg[:2]}/{jpeg}.jpg"])
    assert (storage / "images" / png[:2] / f"{png}.png").read_bytes() == same


def test_stage_files_accepts_images(tmp_path: Path) -> None:
    received = tmp_path / "received"
    received.mkdir()
    (received / "0").write_bytes(image_bytes())
    (received / "1").write_bytes(image_bytes(fmt="WEBP"))
    (received / "2").write_bytes(b"")
    staged = stage_files(
        [
            ("0001.png", received / "0"),
            ("0002.webp", received / "1"),
            (".DS_Store", received / "2"),
        ],
        tmp_path / "staging",
        LIMITS,
    )
    assert sorted(staged.images) == ["0001.png", "0002.webp"]
    assert staged.ignored == [".DS_Store"]
    assert staged.find("outputs/0002.webp") is staged.images["0002.webp"]


def test_stage_files_too_many(tmp_path: Path) -> None:
    path = tmp_path / "image"
    path.write_bytes(image_bytes())
    limits = dataclasses.replace(LIMITS, max_image_files=2)
    with pytest.raises(UploadProblem) as caught:
        stage_files([(f"{n}.png", path) for n in range(3)], tmp_path / "staging", limits)
    assert "3 files, over the 2 file limit (REALUNIFY_MAX_IMAGE_FILES)" in str(caught.value)
    assert caught.value.status_code == 413


def test_stage_files_duplicate_names(tmp_path: Path) -> None:
    path = tmp_path / "image"
    path.write_bytes(image_bytes())
    with pytest.raises(UploadProblem) as caught:
        stage_files([("a.png", path), ("a.png", path)], tmp_path / "staging", LIMITS)
    assert "file 'a.png' and file 'a.png' both have the name 'a.png'" in str(caught.value)


def test_stage_files_non_image(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(b"%PDF-1.7\n")
    with pytest.raises(UploadProblem) as caught:
        stage_files([("0001.png", path)], tmp_path / "staging", LIMITS)
    assert "file '0001.png' is not a PNG, JPEG or WebP image" in str(caught.value)


def test_stage_files_dot_dot_name(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(image_bytes())
    with pytest.raises(UploadProblem) as caught:
        stage_files([("../0001.png", path)], tmp_path / "staging", LIMITS)
    assert "file '../0001.png' leaves the upload" in str(caught.value)
