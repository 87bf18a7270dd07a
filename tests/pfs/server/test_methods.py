"""The rest of pfs_v2 that applies without pipelines, transaction_v2 and metadata, each as pachd
2.12 answers it (server_commit.go, server_commit_set.go, server_file.go, server_repo.go,
server_project.go, the transaction driver, metadata.go)."""

from __future__ import annotations

import http.server
import io
import tarfile
import threading
import time

import grpc
import pytest
from pachyderm_sdk.api import metadata, pfs, transaction


def code_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as failed:
        result = call()
        if hasattr(result, "__next__"):
            list(result)
    return failed.value.code(), failed.value.details()


def finished(info: pfs.CommitInfo) -> bool:
    """Whether CommitInfo.finished is set (the SDK shows an unset timestamp as 1970)."""
    return info.finished.year > 1970


def read(client, commit, path) -> bytes:
    return b"".join(m.value for m in client.pfs.get_file(file=pfs.File(commit=commit, path=path)))


# -- repos and projects ---------------------------------------------------------------------------
def test_delete_repos_and_delete_all(client, repo):
    other = pfs.Project(name="other")
    client.pfs.create_project(project=other)
    client.pfs.create_repo(repo=pfs.Repo(name="elsewhere", type="user", project=other))
    deleted = client.pfs.delete_repos(projects=[other]).repos
    assert [(r.project.name, r.name) for r in deleted] == [("other", "elsewhere")]
    assert [r.repo.name for r in client.pfs.list_repo()] == ["images"]
    client.pfs.delete_all()
    assert list(client.pfs.list_repo()) == []
    assert [p.project.name for p in client.pfs.list_project()] == ["default"]


def test_create_repo_update_changes_the_description(client, repo):
    code, _ = code_of(lambda: client.pfs.create_repo(repo=repo, description="x"))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    client.pfs.create_repo(repo=repo, description="cats and dogs", update=True)
    assert client.pfs.inspect_repo(repo=repo).description == "cats and dogs"


def test_delete_project_with_repos_needs_force(client):
    project = pfs.Project(name="labels")
    client.pfs.create_project(project=project, description="one round")
    client.pfs.create_repo(repo=pfs.Repo(name="round1", type="user", project=project))
    code, message = code_of(lambda: client.pfs.delete_project(project=project))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "repo labels/round1 still exists" in message
    client.pfs.delete_project(project=project, force=True)
    assert [p.project.name for p in client.pfs.list_project()] == ["default"]
    assert list(client.pfs.list_repo()) == []


def test_repos_summary_per_project(client, master, put):
    put(master, {"/a": b"12345"})
    summary = client.pfs.repos_summary(projects=[pfs.ProjectPicker(name="default")]).summaries
    assert [(s.project.name, s.user_repo_count, s.size_bytes) for s in summary] == [("default", 1, 5)]


# -- commits --------------------------------------------------------------------------------------
def test_finish_commit_with_a_description(client, master):
    commit = client.pfs.start_commit(branch=master, description="draft")
    client.pfs.finish_commit(commit=commit, description="labels of round 1")
    assert client.pfs.inspect_commit(commit=commit, wait=pfs.CommitState.FINISHED).description == "labels of round 1"


def test_second_append_to_one_path_in_an_open_commit(client, master, put):
    put(master, {"/log": b"a"})
    commit = client.pfs.start_commit(branch=master)
    client.pfs.put_file_from_bytes(commit=commit, path="/log", data=b"b", append=True)
    client.pfs.put_file_from_bytes(commit=commit, path="/log", data=b"c", append=True)
    client.pfs.finish_commit(commit=commit)
    assert read(client, commit, "/log") == b"abc"


def test_clear_commit_forgets_what_was_staged(client, master, put):
    put(master, {"/keep": b"k"})
    commit = client.pfs.start_commit(branch=master)
    client.pfs.put_file_from_bytes(commit=commit, path="/drop", data=b"d")
    client.pfs.clear_commit(commit=commit)
    client.pfs.finish_commit(commit=commit)
    paths = [fi.file.path for fi in client.pfs.list_file(file=pfs.File(commit=commit, path="/"))]
    assert paths == ["/keep"]
    code, message = code_of(lambda: client.pfs.clear_commit(commit=commit))
    assert code == grpc.StatusCode.UNKNOWN and "cannot clear finished commit" in message


def test_drop_a_finished_commit_moves_the_branch_back(client, master, put):
    first = put(master, {"/a": b"1"})
    second = put(master, {"/a": b"2"})
    code, message = code_of(lambda: client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=first.commit.id)))
    assert "cannot drop a commit that has children" in message
    client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=second.commit.id))
    assert client.pfs.inspect_branch(branch=master).head.id == first.commit.id
    assert read(client, pfs.Commit(branch=master, repo=master.repo), "/a") == b"1"
    code, _ = code_of(lambda: client.pfs.inspect_commit(commit=second.commit))
    assert code == grpc.StatusCode.NOT_FOUND
    assert [r.error for r in client.pfs.fsck()] == []
    # the next commit builds on what is left
    third = put(master, {"/b": b"3"})
    assert third.parent_commit.id == first.commit.id
    assert read(client, third.commit, "/a") == b"1"


def test_dropping_the_only_commit_leaves_an_auto_commit(client, master, put):
    only = put(master, {"/a": b"1"})
    client.pfs.drop_commit(commit=only.commit)
    head = client.pfs.inspect_commit(commit=client.pfs.inspect_branch(branch=master).head)
    assert head.origin.kind == pfs.OriginKind.AUTO and head.commit.id != only.commit.id


def test_squash_without_children_is_refused_as_in_pachd(client, master, put):
    only = put(master, {"/a": b"1"})
    code, message = code_of(lambda: client.pfs.squash_commit_set(commit_set=pfs.CommitSet(id=only.commit.id)))
    assert code == grpc.StatusCode.UNKNOWN and "cannot squash a commit that has no children" in message
    code, message = code_of(lambda: client.pfs.squash_commit_set(commit_set=pfs.CommitSet(id="0" * 32)))
    assert code == grpc.StatusCode.NOT_FOUND


def test_squash_keeps_the_files_and_drops_the_commit_from_history(client, master, put):
    first = put(master, {"/a": b"1", "/b": b"1"})
    middle = put(master, {"/a": b"2", "/c": b"2"})
    last = put(master, {"/b": b"3"})
    client.pfs.squash_commit_set(commit_set=pfs.CommitSet(id=middle.commit.id))
    code, _ = code_of(lambda: client.pfs.inspect_commit(commit=middle.commit))
    assert code == grpc.StatusCode.NOT_FOUND
    assert client.pfs.inspect_commit(commit=last.commit).parent_commit.id == first.commit.id
    assert {p: read(client, last.commit, p) for p in ("/a", "/b", "/c")} == {"/a": b"2", "/b": b"3", "/c": b"2"}
    changed = [d.new_file.file.path for d in client.pfs.diff_file(new_file=pfs.File(commit=last.commit, path="/"))]
    assert changed == ["/", "/a", "/b", "/c"]  # the squashed changes now belong to the child
    assert [r.error for r in client.pfs.fsck()] == []
    history = [c.commit.id for c in client.pfs.list_commit(repo=master.repo, to=last.commit)]
    assert history == [last.commit.id, first.commit.id]


def test_commit_sets_list_inspect_and_wait(client, master, put):
    done = put(master, {"/a": b"1"})
    sets = {s.commit_set.id: s for s in client.pfs.list_commit_set()}
    assert [c.commit.id for c in sets[done.commit.id].commits] == [done.commit.id]
    opened = client.pfs.start_commit(branch=master)
    seen = []
    waiter = threading.Thread(target=lambda: seen.extend(
        client.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=opened.id), wait=True)))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and seen == []  # blocked until the commit lands
    client.pfs.finish_commit(commit=opened)
    waiter.join(30)
    assert [c.commit.id for c in seen] == [opened.id] and finished(seen[0])


def test_find_commits_that_touched_a_path(client, master, put):
    first = put(master, {"/a": b"1", "/b": b"1"})
    put(master, {"/b": b"2"})
    third = put(master, {"/a": b"3"})
    found = list(client.pfs.find_commits(start=third.commit, file_path="/a"))
    assert [r.found_commit.id for r in found if r.found_commit.id] == [third.commit.id, first.commit.id]
    assert found[-1].last_searched_commit.id == first.commit.id and found[-1].commits_searched == 3


def test_walks_without_provenance_are_the_start_itself(client, master, put):
    info = put(master, {"/a": b"1"})
    by_id = pfs.CommitPicker(id=pfs.CommitPickerCommitByGlobalId(
        repo=pfs.RepoPicker(name=pfs.RepoPickerRepoName(name="images", type="user")), id=info.commit.id))
    walked = list(client.pfs.walk_commit_provenance(start=[by_id]))
    assert [c.commit.id for c in walked] == [info.commit.id]
    branch = pfs.BranchPicker(name=pfs.BranchPickerBranchName(
        repo=pfs.RepoPicker(name=pfs.RepoPickerRepoName(name="images")), name="master"))
    branches = list(client.pfs.walk_branch_subvenance(start=[branch]))
    assert [b.branch.name for b in branches] == ["master"]


def test_subscribe_to_labels_at_master_sees_each_commit_once(client, put):
    labels = pfs.Repo(name="labels", type="user", project=pfs.Project(name="default"))
    client.pfs.create_repo(repo=labels)
    master = pfs.Branch(repo=labels, name="master")
    client.pfs.create_branch(branch=master)
    other = pfs.Branch(repo=labels, name="staging")
    seen: list[str] = []
    stream = client.pfs.subscribe_commit(repo=labels, branch="master", state=pfs.CommitState.FINISHED)

    def follow():
        for info in stream:
            seen.append(info.commit.id)
            if len(seen) == 4:
                return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    landed = [client.pfs.inspect_branch(branch=master).head.id]  # the AUTO commit, already there
    for n in range(3):
        put(other, {"/other": b"%d" % n})  # another branch: not followed
        landed.append(put(master, {"/labels.json": b"%d" % n}).commit.id)
    follower.join(30)
    assert seen == landed
    stream.close()


# -- files ----------------------------------------------------------------------------------------
def test_get_file_tar_of_a_folder_and_get_file_of_a_folder(client, master, put):
    info = put(master, {"/cats/1.png": b"one", "/cats/sub/2.png": b"two", "/dogs/3.png": b"three"})
    data = b"".join(m.value for m in client.pfs.get_file_tar(file=pfs.File(commit=info.commit, path="/cats")))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["/cats", "/cats/1.png", "/cats/sub", "/cats/sub/2.png"]
        assert members["/cats/sub"].isdir()
        assert tar.extractfile(members["/cats/sub/2.png"]).read() == b"two"
    code, message = code_of(lambda: client.pfs.get_file(file=pfs.File(commit=info.commit, path="/cats")))
    assert code == grpc.StatusCode.UNKNOWN and "Use GetFileTAR instead" in message


def test_add_file_from_an_http_url_appends_what_it_serves(client, master):
    body = b"served over http\n"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/data.txt":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{web.server_port}"
        with client.pfs.commit(branch=master) as commit:  # the SDK overwrites: delete_file, then add_file
            commit.put_file_from_url(path="/data.txt", url=f"{base}/data.txt")
        assert read(client, commit, "/data.txt") == body
        appended = client.pfs.start_commit(branch=master)  # add_file alone appends, as in pachd
        client.pfs.modify_file(iter([
            pfs.ModifyFileRequest(set_commit=appended),
            pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/data.txt",
                                                       url=pfs.AddFileUrlSource(url=f"{base}/data.txt")))]))
        client.pfs.finish_commit(commit=appended)
        assert read(client, appended, "/data.txt") == body + body
        with client.pfs.commit(branch=master) as failing:
            code, message = code_of(lambda: failing.put_file_from_url(path="/x", url=f"{base}/missing"))
            assert code == grpc.StatusCode.UNKNOWN and "404" in message
            code, message = code_of(lambda: failing.put_file_from_url(path="/x", url="s3://bucket/key"))
            assert code == grpc.StatusCode.UNIMPLEMENTED and "object storage" in message
    finally:
        web.shutdown()


def test_get_file_paths_are_globs_as_in_pachd(client, master, put):
    info = put(master, {"/cats/1.png": b"one", "/cats/2.png": b"two", "/cats/notes.txt": b"n"})
    assert read(client, info.commit, "/cats/1.*") == b"one"
    code, message = code_of(lambda: read(client, info.commit, "/cats/*.png"))
    assert code == grpc.StatusCode.UNKNOWN and "matched multiple files" in message
    data = b"".join(m.value for m in client.pfs.get_file_tar(file=pfs.File(commit=info.commit, path="/cats/*.png")))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["/cats/1.png", "/cats/2.png"]
    code, _ = code_of(lambda: read(client, info.commit, "/dogs/*"))
    assert code == grpc.StatusCode.NOT_FOUND


def test_diff_file_honours_the_old_path(client, master, put):
    info = put(master, {"/v1/a": b"same", "/v1/b": b"old", "/v2/a": b"same", "/v2/b": b"new"})
    diff = list(client.pfs.diff_file(new_file=pfs.File(commit=info.commit, path="/v2"),
                                     old_file=pfs.File(commit=info.commit, path="/v1")))
    pairs = [(d.old_file.file.path, d.new_file.file.path) for d in diff]
    # pachd pairs entries by full path: nothing under /v1 has a twin under /v2
    assert pairs == [("/v1/", ""), ("/v1/a", ""), ("/v1/b", ""), ("", "/v2/"), ("", "/v2/a"), ("", "/v2/b")]


def test_diff_file_against_the_parent_lists_changed_directories(client, master, put):
    put(master, {"/d/x": b"1", "/d/y": b"1", "/e/z": b"1"})
    second = put(master, {"/d/x": b"2"})
    diff = list(client.pfs.diff_file(new_file=pfs.File(commit=second.commit, path="/")))
    assert [(d.old_file.file.path, d.new_file.file.path) for d in diff] == [("/", "/"), ("/d/", "/d/"),
                                                                            ("/d/x", "/d/x")]


# -- transactions and metadata --------------------------------------------------------------------
def test_a_transaction_runs_its_requests_when_finished(client, repo):
    labels = pfs.Repo(name="labels", type="user", project=pfs.Project(name="default"))
    with client.transaction.transaction() as txn:
        client.pfs.create_repo(repo=labels)
        client.pfs.create_branch(branch=pfs.Branch(repo=labels, name="master"))
        assert [r.repo.name for r in client.pfs.list_repo()] == ["images"]  # nothing ran yet
        pending = client.transaction.inspect_transaction(transaction=txn)
        assert len(pending.requests) == 2
    assert sorted(r.repo.name for r in client.pfs.list_repo()) == ["images", "labels"]
    assert client.pfs.inspect_branch(branch=pfs.Branch(repo=labels, name="master")).head.id
    assert client.transaction.list_transaction().transaction_info == []
    code, _ = code_of(lambda: client.transaction.inspect_transaction(transaction=txn))
    assert code == grpc.StatusCode.NOT_FOUND


def test_a_request_that_cannot_run_is_refused_when_appended(client, repo):
    labels = pfs.Repo(name="labels", type="user", project=pfs.Project(name="default"))
    with client.transaction.transaction() as txn:
        code, _ = code_of(lambda: client.pfs.create_repo(repo=repo))  # exists already
        assert code == grpc.StatusCode.ALREADY_EXISTS
        code, _ = code_of(lambda: client.pfs.start_commit(branch=pfs.Branch(repo=labels, name="master")))
        assert code == grpc.StatusCode.NOT_FOUND
        client.pfs.create_repo(repo=labels)
        client.pfs.start_commit(branch=pfs.Branch(repo=labels, name="master"))  # the repo comes first now
        assert len(client.transaction.inspect_transaction(transaction=txn).requests) == 2


def test_start_commit_in_a_transaction_answers_with_the_commit_it_will_make(client, master):
    with client.transaction.transaction() as txn:
        commit = client.pfs.start_commit(branch=master)
    assert commit.id == txn.id
    info = client.pfs.inspect_commit(commit=pfs.Commit(id=commit.id, repo=master.repo))
    assert not finished(info)  # started by the transaction, open for writing
    client.pfs.put_file_from_bytes(commit=commit, path="/a", data=b"1")
    client.pfs.finish_commit(commit=commit)
    assert read(client, commit, "/a") == b"1"


def test_a_failing_transaction_undoes_the_repos_it_created(client, repo):
    request = [transaction.TransactionRequest(create_repo=pfs.CreateRepoRequest(
                   repo=pfs.Repo(name="fresh", type="user"))),
               transaction.TransactionRequest(create_repo=pfs.CreateRepoRequest(repo=repo))]
    code, message = code_of(lambda: client.transaction.batch_transaction(requests=request))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "error running request 2 of 2" in message
    assert [r.repo.name for r in client.pfs.list_repo()] == ["images"]


def test_edit_metadata_of_commits_branches_repos_projects_and_the_cluster(client, master, put):
    info = put(master, {"/a": b"1"})
    commit_picker = pfs.CommitPicker(id=pfs.CommitPickerCommitByGlobalId(
        repo=pfs.RepoPicker(name=pfs.RepoPickerRepoName(project=pfs.ProjectPicker(name="default"), name="images")),
        id=info.commit.id))
    branch_picker = pfs.BranchPicker(name=pfs.BranchPickerBranchName(
        repo=pfs.RepoPicker(name=pfs.RepoPickerRepoName(name="images", type="user")), name="master"))
    client.metadata.edit_metadata(edits=[
        metadata.Edit(commit=commit_picker, add_key=metadata.EditAddKey(key="round", value="1")),
        metadata.Edit(branch=branch_picker, replace=metadata.EditReplace(replacement={"owner": "ana"})),
        metadata.Edit(project=pfs.ProjectPicker(name="default"), edit_key=metadata.EditEditKey(key="k", value="v")),
        metadata.Edit(cluster=metadata.ClusterPicker(), add_key=metadata.EditAddKey(key="site", value="lab")),
    ])
    assert client.pfs.inspect_commit(commit=info.commit).metadata == {"round": "1"}
    assert client.pfs.inspect_branch(branch=master).metadata == {"owner": "ana"}
    assert client.pfs.inspect_project(project=pfs.Project(name="default")).metadata == {"k": "v"}
    assert client.admin.inspect_cluster().metadata == {"site": "lab"}
    # all or nothing: the second edit fails, so the first is not applied either
    code, message = code_of(lambda: client.metadata.edit_metadata(edits=[
        metadata.Edit(commit=commit_picker, edit_key=metadata.EditEditKey(key="round", value="2")),
        metadata.Edit(commit=commit_picker, add_key=metadata.EditAddKey(key="round", value="3")),
    ]))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "edit #1" in message and "already exists" in message
    assert client.pfs.inspect_commit(commit=info.commit).metadata == {"round": "1"}
    code, message = code_of(lambda: client.metadata.edit_metadata(edits=[metadata.Edit(
        commit=commit_picker, add_key=metadata.EditAddKey(key="", value="x"))]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("validate request: ")


def test_methods_that_need_pipelines_or_file_sets_say_why(client):
    code, message = code_of(lambda: client.pfs.create_file_set(iter([])))
    assert code == grpc.StatusCode.UNIMPLEMENTED and "file sets" in message
    code, message = code_of(lambda: client.pfs.egress(commit=pfs.Commit(id="0" * 32)))
    assert code == grpc.StatusCode.UNIMPLEMENTED and "egress" in message


def test_waiting_inspect_commit_wakes_when_the_commit_lands(client, master):
    opened = client.pfs.start_commit(branch=master)
    result = []
    waiter = threading.Thread(target=lambda: result.append(
        client.pfs.inspect_commit(commit=opened, wait=pfs.CommitState.FINISHED)))
    waiter.start()
    time.sleep(0.3)
    assert not result
    client.pfs.finish_commit(commit=opened)
    waiter.join(30)
    assert result and finished(result[0])


def test_an_open_commit_stays_the_branch_head_across_a_restart(served, client, master, put):
    from pachyderm_sdk import Client

    from jupyterlab_pachls.pfs.server import make_server

    store, _port = served
    put(master, {"/log": b"a"})
    opened = client.pfs.start_commit(branch=master)
    client.pfs.put_file_from_bytes(commit=opened, path="/log", data=b"b", append=True)
    again, port = make_server(store, "127.0.0.1:0")  # a new server process over the same store
    try:
        restarted = Client("127.0.0.1", port)
        assert restarted.pfs.inspect_branch(branch=master).head.id == opened.id
        code, message = code_of(lambda: restarted.pfs.start_commit(branch=master))
        assert code == grpc.StatusCode.UNKNOWN and "has not been finished" in message
        restarted.pfs.put_file_from_bytes(commit=opened, path="/log", data=b"c", append=True)
        restarted.pfs.finish_commit(commit=opened)
        assert read(restarted, opened, "/log") == b"abc"
    finally:
        again.stop(grace=None).wait()


def test_an_open_commit_reads_as_what_it_holds_so_far(client, master, put):
    put(master, {"/keep.txt": b"k", "/old/1.txt": b"1", "/old/2.txt": b"2", "/log": b"a"})
    opened = client.pfs.start_commit(branch=master)
    client.pfs.put_file_from_bytes(commit=opened, path="/new/3.txt", data=b"three")
    client.pfs.put_file_from_bytes(commit=opened, path="/log", data=b"b", append=True)
    client.pfs.delete_file(commit=opened, path="/old/")
    head = pfs.Commit(branch=master, repo=master.repo)  # the open commit is the branch's head
    walked = [fi.file.path for fi in client.pfs.walk_file(file=pfs.File(commit=head, path="/"))]
    assert walked == ["/", "/keep.txt", "/log", "/new/", "/new/3.txt"]
    assert read(client, head, "/new/3.txt") == b"three" and read(client, opened, "/log") == b"ab"
    info = client.pfs.inspect_file(file=pfs.File(commit=opened, path="/new"))
    assert info.file_type == pfs.FileType.DIR and info.size_bytes == 5
    assert info.committed.year == 1970  # unset: the commit has not finished
    code, _ = code_of(lambda: client.pfs.inspect_file(file=pfs.File(commit=opened, path="/old/1.txt")))
    assert code == grpc.StatusCode.NOT_FOUND
    open_hashes = {fi.file.path: fi.hash for fi in client.pfs.walk_file(file=pfs.File(commit=opened, path="/"))}
    client.pfs.finish_commit(commit=opened)
    done = {fi.file.path: fi.hash for fi in client.pfs.walk_file(file=pfs.File(commit=opened, path="/"))}
    assert done == open_hashes  # the same tree, the same hashes, once it lands
