"""Labeling at scale against a real Label Studio: task import and label commits vs Label Studio's own paths.

    python bench/labeling.py [--tasks 10000] [--annotations 1000] [--json PATH]

1. Import: a labeling session over ``images@master`` (N files, read through a read-only mount) vs
   Label Studio's own Local Files storage sync of a plain directory holding the same files.
2. Commit: **Commit labels** of M annotations (one label commit through the labels mount) vs
   Label Studio's own JSON export of the same project.

The last line is ``import_ratio=<float> commit_vs_export_ratio=<float>`` (targets <= 1.2 and <= 1.5).
Set ``PACHLS_BENCH_LS_DIR`` to reuse a migrated Label Studio data directory between runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
from _bench import add_json_argument, write_json

from jupyterlab_pachls.demo import demo_files
from jupyterlab_pachls.labeling.labelstudio import ManagedLabelStudio
from jupyterlab_pachls.labeling.session import LabelingService
from jupyterlab_pachls.labeling.templates import TEMPLATES
from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.pfs import LocalBackend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--annotations", type=int, default=1_000)
    add_json_argument(parser)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pachls-bench-"))
    ls_dir = Path(os.environ.get("PACHLS_BENCH_LS_DIR", work / "labelstudio"))
    docroot = work / "docroot"
    image = demo_files()[0][1]
    files = [(f"/img/{i // 1000:02d}/{i:05d}.png", image) for i in range(args.tasks)]

    backend = LocalBackend(work / "store")
    backend.create_repo("images")
    with backend.commit("images", "master") as c:
        c.put_files(files)
    plain = docroot / "plain"
    for path, data in files:
        target = plain / path[1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    label_studio = ManagedLabelStudio(ls_dir, docroot)
    started = time.perf_counter()
    label_studio.start()
    label_studio.wait_ready(900)
    ready_s = time.perf_counter() - started
    print(f"label studio ready in {ready_s:.1f} s")
    headers = {"Authorization": f"Token {label_studio.credentials.token}"}
    api = httpx.Client(base_url=label_studio.url, headers=headers, timeout=900)
    mounts = MountManager(backend, docroot / "pfs", work / "mount-state")
    service = LabelingService(lambda: backend, lambda: mounts, label_studio, work / "labeling")
    try:
        # -- import: Label Studio's own sync of a plain directory ---------------------------------
        config = TEMPLATES["image-classification"].render(["cat", "dog"])
        t = time.perf_counter()
        project = api.post("/api/projects/", json={"title": "plain sync", "label_config": config}).json()
        storage = api.post("/api/storages/localfiles/", json={
            "project": project["id"], "path": str(plain), "regex_filter": r".*\.png", "use_blob_urls": True,
            "recursive_scan": True}).json()
        synced = api.post(f"/api/storages/localfiles/{storage['id']}/sync").json()
        sync_s = time.perf_counter() - t
        count = api.get(f"/api/projects/{project['id']}").json()["task_number"]
        assert count == args.tasks, (count, synced)

        # -- import: a session over the versioned repo, through a read-only mount ------------------
        t = time.perf_counter()
        session = service.create_session(data="images@master", labels="labels@master", glob="/img/**",
                                         template="image-classification", classes=["cat", "dog"])
        import_s = time.perf_counter() - t
        assert session.tasks == args.tasks
        print(f"import {args.tasks} tasks: label studio sync {sync_s:.2f} s, session through a mount {import_s:.2f} s "
              f"({mounts.status(session.data_mount).presentation})")

        # -- annotations (not timed) ----------------------------------------------------------------
        exported = api.get(f"/api/projects/{session.project_id}/export",
                           params={"exportType": "JSON", "download_all_tasks": "true"}).json()
        for task in exported[: args.annotations]:
            api.post(f"/api/tasks/{task['id']}/annotations/", json={"result": [
                {"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": ["cat"]}}]})

        # -- commit labels vs Label Studio's own export ----------------------------------------------
        exports = []
        for _ in range(3):
            t = time.perf_counter()
            body = api.get(f"/api/projects/{session.project_id}/export", params={"exportType": "JSON"})
            exports.append(time.perf_counter() - t)
            assert len(body.json()) == args.annotations
        export_s = min(exports)
        t = time.perf_counter()
        landed = service.commit_labels(session.id, message="bench round", author="bench")
        commit_s = time.perf_counter() - t
        assert landed.n_files == args.annotations
        print(f"{args.annotations} annotations: label studio JSON export {export_s:.2f} s (best of 3), "
              f"commit labels {commit_s:.2f} s")
        last = f"import_ratio={import_s / sync_s:.3f} commit_vs_export_ratio={commit_s / export_s:.3f}"
        print(last)
        write_json(args.json, "labeling", args, {
            "label_studio_ready_s": ready_s, "ls_sync_s": sync_s, "session_import_s": import_s,
            "presentation": mounts.status(session.data_mount).presentation,
            "ls_export_s": export_s, "ls_export_rounds_s": exports, "commit_labels_s": commit_s,
            "import_ratio": import_s / sync_s, "commit_vs_export_ratio": commit_s / export_s,
        }, last)
    finally:
        mounts.close()
        label_studio.stop()
        backend.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
