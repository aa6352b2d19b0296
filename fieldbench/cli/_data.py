"""The data commands: generate, and the datasets group (list, get, verify, migrate, publish, register, build)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import (
    check_scheduler,
    check_writable,
    console,
    json_option,
    parse_range,
    progress_bar,
    say,
    show,
    user_errors,
    write_json,
)


@user_errors
def generate(
    spec: str = typer.Argument(None, help="A standard dataset name (see `fieldbench datasets list`) or a JSON "
                                          "spec file; omit to describe one split with the options below."),
    out: str = typer.Option(..., "--out", "-o", help="Target directory or fsspec URL (memory://, s3://, ...)."),
    split: list[str] = typer.Option(None, help="Only these splits (repeatable)."),
    scheduler: str = typer.Option(None, help="'threads' (default), 'processes', 'sync', or tcp://HOST:PORT of a "
                                             "running dask.distributed scheduler."),
    workers: int = typer.Option(None, help="Workers for the local schedulers."),
    families: str = typer.Option("disc", help="Comma-separated families: disc, prism (2D) or cuboid, sphere (3D)."),
    sources: str = typer.Option("1", help="Sources per sample: K or a range like 2-8."),
    overlap: str = typer.Option("none", help="none | allowed | forced."),
    domain: float = typer.Option(3.0, help="Half-width h of the domain [-h, h]^d."),
    size: str = typer.Option("1", help="Radius (discs, spheres) or full side (prisms, cuboids): value or lo-hi."),
    aspect: str = typer.Option("square", help="square | free (prisms and cuboids)."),
    magnetisation: float = typer.Option(1.0, help="Std of the normal magnetisation components."),
    points: int = typer.Option(1024, help="Evaluation points per sample."),
    point_method: str = typer.Option("uniform", help="uniform | grid."),
    exclude_interiors: bool = typer.Option(False, help="Keep points outside every source."),
    samples: int = typer.Option(1000, help="Samples (configurations)."),
    seed: int = typer.Option(0, help="Seed of the split."),
    shard_size: int = typer.Option(1000, help="Samples per shard."),
    name: str = typer.Option("custom", help="Dataset name (options mode)."),
) -> None:
    """Generate (or resume) a dataset of Parquet shards and its card; rerun to resume after an interruption."""
    from ..datasets import resolve_spec
    from ..pipeline import generate as run_generate

    check_scheduler(scheduler)
    check_writable(out, "--out", folder=True)
    dataset = resolve_spec(spec, name=name, families=[f.strip() for f in families.split(",")],
                           sources=parse_range(sources, int), overlap=overlap, domain=domain, size=parse_range(size),
                           aspect=aspect, magnetisation=magnetisation, points=points, point_method=point_method,
                           exclude_interiors=exclude_interiors, samples=samples, seed=seed, shard_size=shard_size)
    with progress_bar("shards") as bar:
        task = bar.add_task(f"generating {dataset.name}", total=None)
        card = run_generate(dataset, out, splits=split or None, scheduler=scheduler, workers=workers,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))
    say((dataset.name, "bold"), f" -> {out}: {len(card.splits)} split(s), {card.points:,} points; "
                                f"content sha256 {card.content_sha256[:16]}...")


@user_errors
def datasets_list(json_out: Path = json_option("every dataset, split (samples, points) and cache state")) -> None:
    """The standard datasets, their splits and sizes, and whether a verified copy is cached."""
    from .._tables import datasets_table
    from ..datasets import dataset_listing

    check_writable(json_out, "--json", folder=False)
    listing = dataset_listing()
    show(datasets_table(listing))
    write_json(json_out, listing)


@user_errors
def datasets_get(
    name: str = typer.Argument(..., help="Standard dataset name."),
    mirror: list[str] = typer.Option(None, help="A mirror, repeatable, tried in order: an http(s) or ftp base URL, "
                                                "doi:10.NNNN/ID (Zenodo, figshare, Dataverse) or hf://datasets/ORG/"
                                                "NAME[@REV]; '' for none (else $FIELDBENCH_MIRROR or the config "
                                                "file)."),
    cache_dir: Path = typer.Option(None, help="Cache root (else $FIELDBENCH_CACHE or the OS cache folder)."),
    rebuild: bool = typer.Option(True, help="Rebuild locally (and verify) when no mirror can provide it."),
    full_check: bool = typer.Option(False, help="Re-hash every file of a cached copy and check it against the "
                                                "registry again (by default only files whose stamp changed)."),
) -> None:
    """Download a standard dataset from the first mirror that has it (sha256-checked) or rebuild it, verified
    against the registry."""
    from ..datasets import get

    check_writable(cache_dir, "--cache-dir", folder=True)
    # No --mirror at all: the settings decide (an empty list would mean "no mirror").
    path = get(name, mirror=mirror or None, cache_dir=cache_dir, rebuild=rebuild, full_check=full_check)
    say((name, "bold"), f": {path}")


@user_errors
def datasets_verify(
    path: Path = typer.Argument(..., help="A dataset directory (with card.json)."),
    reference: Path = typer.Option(None, help="A copy identical to the registry: values that are not bit-identical "
                                              "to it are compared elementwise, to float32 rounding."),
) -> None:
    """Re-hash every file against its card, report stray files, and compare a standard dataset with the registry."""
    from ..datasets import verify

    report = verify(path, reference=reference)
    console.print(str(report))
    if not report.ok:
        raise typer.Exit(1)


@user_errors
def datasets_migrate(
    path: Path = typer.Argument(..., help="A dataset directory (with card.json) in the layout of version 1."),
) -> None:
    """Move a dataset folder of layout version 1 into the current layout, in place (no file changes its bytes;
    rerun it after an interruption); on a current folder, (re)write its README.md dataset card."""
    from ..pipeline import migrate_layout

    console.print(str(migrate_layout(path)), highlight=False, soft_wrap=True)


@user_errors
def datasets_publish(
    name: str = typer.Argument(..., help="Standard dataset name."),
    to: Path = typer.Option(..., "--to", help="Folder to fill with mirror-ready files."),
    flat: bool = typer.Option(False, help="Every file straight into TO under its flat archive name (NAME__a__b), "
                                          "for a DOI record (Zenodo, figshare, Dataverse hold no folders)."),
) -> None:
    """Write a dataset's files, card.json, README.md dataset card and SHA256SUMS into TO/NAME (a Hugging Face
    dataset repository's content, or a mirror: serve TO with any static file server); print registry lines."""
    from ..datasets import publish

    check_writable(to, "--to", folder=True)
    lines = publish(name, to, flat=flat)
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    if flat:
        console.print(f"{len(lines)} files and {name}__SHA256SUMS in {to}, under their archive names: upload them "
                      "all to one DOI record and use `doi:<its DOI>` as a mirror (see docs/data_format.md, "
                      "Publishing)", highlight=False, soft_wrap=True)
        return
    console.print(f"{len(lines)} files and SHA256SUMS under {to / name}; serve {to} (e.g. `python -m http.server`) "
                  f"and set FIELDBENCH_MIRROR to its URL, or upload {to / name} as a dataset repository (see "
                  "docs/data_format.md, Publishing)")


@user_errors
def datasets_register(
    name: str = typer.Argument(..., help="Standard dataset name."),
    dataset_dir: Path = typer.Argument(..., help="A complete copy generated from its current spec (e.g. the cached "
                                                 "one); nothing is regenerated."),
) -> None:
    """Write the registry's checksums of a standard dataset from an existing copy (standard/registry.json)."""
    from ..datasets import register

    console.print(str(register(name, dataset_dir)), highlight=False, soft_wrap=True)


@user_errors
def datasets_build(
    names: list[str] = typer.Argument(None, help="Standard datasets (default: all)."),
    workdir: Path = typer.Option(None, help="Where to generate (WORKDIR/NAME is deleted first; default "
                                            "/tmp/fieldbench-registry-build)."),
) -> None:
    """Regenerate standard datasets from scratch and register them (after a change to a spec or the generator)."""
    from ..datasets import build_registry

    for registration in build_registry(names or None, workdir):
        console.print(str(registration), highlight=False, soft_wrap=True)
