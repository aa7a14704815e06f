from __future__ import annotations

from pathlib import Path

from tests.support.cli import USER1, as_json, fails, new_id, ok

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
EDITOR = "editor@example.com"


def test_blog_commands(cli, users, tmp_path: Path, settings) -> None:
    image = tmp_path / "pic.png"
    image.write_bytes(PNG)
    content = tmp_path / "post.md"
    content.write_text("Spring is here.\n", encoding="utf-8")
    pid = new_id(
        cli(
            "blog",
            "add",
            "--title",
            "Spring",
            "--content-file",
            content,
            "--image",
            image,
            as_=EDITOR,
        )
    )
    rows = as_json(cli("blog", "list", "--json", as_=EDITOR))
    assert [(r["id"], r["title"], r["published_at"]) for r in rows] == [(pid, "Spring", None)]
    stored = rows[0]["image"]
    assert stored.endswith(".png") and (settings.uploads_dir / stored).read_bytes() == PNG
    assert ok(cli("blog", "list", as_=EDITOR)).stdout.splitlines()[0].startswith("id\ttitle")
    assert as_json(cli("blog", "show", pid, "--json", as_=EDITOR))["content"] == "Spring is here."
    assert "Spring is here." in ok(cli("blog", "show", pid)).stdout

    ok(
        cli(
            "blog",
            "edit",
            pid,
            "--title",
            "Summer",
            "--content",
            "Hot.",
            "--remove-image",
            as_=EDITOR,
        )
    )
    shown = as_json(cli("blog", "show", pid, "--json", as_=EDITOR))
    assert (shown["title"], shown["content"], shown["image"]) == ("Summer", "Hot.", None)
    ok(cli("blog", "edit", pid, "--image", image, "--publish-at", "2030-01-01 10:00", as_=EDITOR))
    shown = as_json(cli("blog", "show", pid, "--json", as_=EDITOR))
    assert shown["image"].endswith(".png") and shown["published_at"] == "2030-01-01T09:00:00+00:00"

    ok(cli("blog", "publish", pid, as_=EDITOR))
    assert as_json(cli("blog", "show", pid, "--json"))["published_at"] < "2030"
    ok(cli("blog", "publish", pid, "--at", "2031-01-01 00:00", as_=EDITOR))
    assert as_json(cli("blog", "show", pid, "--json"))["published_at"].startswith(
        "2030-12-31T23:00"
    )
    ok(cli("blog", "rm", pid, as_=EDITOR))
    assert as_json(cli("blog", "list", "--json")) == []


def test_blog_refusals(cli, users, tmp_path: Path, snapshot) -> None:
    pid = new_id(cli("blog", "add", "--title", "T", "--content", "C", as_=EDITOR))
    before = snapshot()
    fails(
        cli("blog", "add", "--title", "T", "--content", "C", as_=USER1),
        "a user cannot write blog posts",
    )
    fails(
        cli("blog", "edit", pid, "--title", "X", as_="manager@example.com"),
        "cannot manage blog posts",
    )
    fails(
        cli("blog", "add", "--title", "", "--content", "C", as_=EDITOR), "title must not be empty"
    )
    bad = tmp_path / "x.txt"
    bad.write_text("not an image")
    fails(
        cli("blog", "add", "--title", "T", "--content", "C", "--image", bad, as_=EDITOR),
        "PNG, JPEG, GIF or WebP",
    )
    fails(
        cli(
            "blog",
            "add",
            "--title",
            "T",
            "--content",
            "C",
            "--image",
            tmp_path / "no.png",
            as_=EDITOR,
        ),
        "cannot read",
    )
    fails(cli("blog", "show", 999, as_=EDITOR), "blog post 999 not found")
    fails(cli("blog", "publish", pid, "--at", "someday", as_=EDITOR), "cannot read time")
    assert snapshot() == before
