"""What clients trip on first: hashes, cleared branches, missing repos, AUTO commits, times,
validation, the per-call log, and the identity calls — each as pachd 2.12 answers it
(src/server/pfs/server/, src/internal/middleware/validation/, src/pfs/pfs.go)."""

from __future__ import annotations

import hashlib
import logging

import grpc
import pytest
from pachyderm_sdk.api import admin, auth, enterprise, pfs, pps, transaction
from pachyderm_sdk.errors import AuthServiceNotActivated


def code_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as failed:
        result = call()
        if hasattr(result, "__next__"):
            list(result)
    return failed.value.code(), failed.value.details()


def test_file_hashes_are_opaque_stable_and_directories_hash_their_children(client, master, put):
    info = put(master, {"/a/x.txt": b"hello", "/b.txt": b"hello", "/c.txt": b"other"})
    files = {fi.file.path: fi for fi in client.pfs.walk_file(file=pfs.File(commit=info.commit, path="/"))}
    assert set(files) == {"/", "/a/", "/a/x.txt", "/b.txt", "/c.txt"}
    sha = hashlib.sha256(b"hello").digest()
    assert len(files["/b.txt"].hash) == 32 and files["/b.txt"].hash != sha  # not the content's sha256
    assert files["/a/x.txt"].hash == files["/b.txt"].hash  # same content, same hash
    assert files["/c.txt"].hash != files["/b.txt"].hash
    # a directory hashes its direct children's hashes in path order (pachd's source.go)
    children = [files["/a/"].hash, files["/b.txt"].hash, files["/c.txt"].hash]
    assert files["/"].hash == hashlib.blake2b(b"".join(children), digest_size=32).digest()
    assert files["/a/"].hash == hashlib.blake2b(files["/a/x.txt"].hash, digest_size=32).digest()
    # the same content in a later commit keeps its hash; directories follow their content
    later = put(master, {"/d.txt": b"hello"})
    after = {fi.file.path: fi for fi in client.pfs.walk_file(file=pfs.File(commit=later.commit, path="/"))}
    assert after["/d.txt"].hash == files["/b.txt"].hash
    assert after["/a/"].hash == files["/a/"].hash  # untouched
    children = [after[p].hash for p in ("/a/", "/b.txt", "/c.txt", "/d.txt")]
    assert after["/"].hash == hashlib.blake2b(b"".join(children), digest_size=32).digest() != files["/"].hash
    changed = put(master, {"/a/x.txt": b"changed"})
    moved = client.pfs.inspect_file(file=pfs.File(commit=changed.commit, path="/a"))
    inner = client.pfs.inspect_file(file=pfs.File(commit=changed.commit, path="/a/x.txt"))
    assert moved.hash == hashlib.blake2b(inner.hash, digest_size=32).digest() != files["/a/"].hash


def test_commit_branch_is_cleared_in_every_response_pachd_clears(client, master, put):
    started = client.pfs.start_commit(branch=master)
    assert not started.branch.name
    client.pfs.put_file_from_bytes(commit=started, path="/f", data=b"1")
    client.pfs.finish_commit(commit=started)
    by_branch = pfs.Commit(branch=master, repo=master.repo)
    info = client.pfs.inspect_commit(commit=by_branch, wait=pfs.CommitState.FINISHED)
    assert info.commit.id == started.id and not info.commit.branch.name and not info.parent_commit.branch.name
    assert all(not ci.commit.branch.name for ci in client.pfs.list_commit(repo=master.repo))
    assert not client.pfs.inspect_branch(branch=master).head.branch.name
    assert all(not b.head.branch.name for b in client.pfs.list_branch(repo=master.repo))
    file = client.pfs.inspect_file(file=pfs.File(commit=by_branch, path="/f"))
    assert not file.file.commit.branch.name
    second = put(master, {"/f": b"2"})
    diff = list(client.pfs.diff_file(new_file=pfs.File(commit=second.commit, path="/f")))
    assert diff and all(not d.new_file.file.commit.branch.name and not d.old_file.file.commit.branch.name
                        for d in diff)


def test_deleting_a_missing_repo_is_ok_and_deletes_nothing(client, repo):
    assert client.pfs.delete_repo(repo=pfs.Repo(name="nothing-here", type="user")).deleted is False
    assert client.pfs.delete_repo(repo=repo).deleted is True
    assert [r.repo.name for r in client.pfs.list_repo()] == []


def test_branch_created_without_head_gets_an_empty_auto_commit(client, master, put):
    client.pfs.create_branch(branch=master)
    head = client.pfs.inspect_branch(branch=master).head
    auto = client.pfs.inspect_commit(commit=head)
    assert auto.origin.kind == pfs.OriginKind.AUTO and auto.finished.year > 1970 and not auto.parent_commit.id
    assert list(client.pfs.list_file(file=pfs.File(commit=head, path="/"))) == []
    code, message = code_of(lambda: client.pfs.inspect_file(file=pfs.File(commit=head, path="/")))
    assert code == grpc.StatusCode.NOT_FOUND and message.startswith("file / not found")
    first = put(master, {"/x": b"x"})
    assert first.origin.kind == pfs.OriginKind.USER and first.parent_commit.id == head.id
    user_only = list(client.pfs.list_commit(repo=master.repo, origin_kind=pfs.OriginKind.USER))
    assert [c.commit.id for c in user_only] == [first.commit.id]


def test_file_infos_carry_the_commit_time(client, master, put):
    info = put(master, {"/x": b"x"})
    file = client.pfs.inspect_file(file=pfs.File(commit=info.commit, path="/x"))
    assert file.committed == info.finishing and file.committed.year > 1970


def test_commit_infos_do_not_count_files(client, master, put):
    info = put(master, {"/x": b"x", "/y": b"y"})
    assert info.metadata == {}  # pachd keeps no file count; nothing of ours leaks into metadata
    assert info.details.size_bytes == 2


def test_requests_pachd_would_not_validate_are_invalid_arguments(client, master):
    code, message = code_of(lambda: client.pfs.drop_commit_set(commit_set=None))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message == "validate request: invalid DropCommitSetRequest.CommitSet: value is required"
    code, message = code_of(lambda: client.pfs.find_commits(start=None, file_path="/x"))
    assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT,
                               "validate recv: invalid FindCommitsRequest.Start: value is required")
    code, message = code_of(lambda: client.pfs.delete_branch(branch=None))
    assert message.startswith("validate request: invalid DeleteBranchRequest.Branch")
    # embedded messages are validated too, as ValidateAll does
    code, message = code_of(lambda: client.transaction.batch_transaction(requests=[
        transaction.TransactionRequest(delete_branch=pfs.DeleteBranchRequest(force=True))]))
    assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT,
                               "validate request: invalid BatchTransactionRequest.Requests[0]: embedded message "
                               "failed validation | caused by: invalid TransactionRequest.DeleteBranch: embedded "
                               "message failed validation | caused by: invalid DeleteBranchRequest.Branch: value "
                               "is required")
    assert [r.repo.name for r in client.pfs.list_repo()] == ["images"]


def test_missing_and_existing_things_are_named_as_pachd_names_them(client, master, put):
    info = put(master, {"/x": b"x"})
    assert code_of(lambda: client.pfs.inspect_repo(repo=pfs.Repo(name="missing", type="user"))) == (
        grpc.StatusCode.NOT_FOUND, "repo default/missing not found")
    assert code_of(lambda: client.pfs.inspect_branch(branch=pfs.Branch(repo=master.repo, name="nope"))) == (
        grpc.StatusCode.NOT_FOUND, 'branch "nope" not found in repo default/images')
    assert code_of(lambda: client.pfs.inspect_commit(commit=pfs.Commit(repo=master.repo, id="0" * 32))) == (
        grpc.StatusCode.NOT_FOUND, f"commit default/images@{'0' * 32} not found")
    assert code_of(lambda: client.pfs.create_repo(repo=master.repo)) == (
        grpc.StatusCode.ALREADY_EXISTS, "repo default/images already exists")
    assert code_of(lambda: client.pfs.inspect_file(file=pfs.File(commit=info.commit, path="/y"))) == (
        grpc.StatusCode.NOT_FOUND, f"file /y not found in repo default/images at commit {info.commit.id}")


def test_each_call_is_logged_at_debug_level(client, master, caplog):
    with caplog.at_level(logging.DEBUG, logger="jupyterlab_pachls.pfs.server"):
        client.pfs.inspect_repo(repo=master.repo)
        code_of(lambda: client.pfs.inspect_repo(repo=pfs.Repo(name="missing", type="user")))
    lines = [r.getMessage() for r in caplog.records if r.name == "jupyterlab_pachls.pfs.server"]
    assert any(line.startswith("/pfs_v2.API/InspectRepo OK ") and line.endswith("ms") for line in lines)
    assert any(line.startswith("/pfs_v2.API/InspectRepo NOT_FOUND ") for line in lines)


def test_other_services_answer_as_pachd_with_the_feature_off(served):
    with grpc.insecure_channel(f"127.0.0.1:{served[1]}") as channel:
        assert code_of(lambda: enterprise.ApiStub(channel).get_state()) == (
            grpc.StatusCode.UNKNOWN, "enterprise server is deprecated")
        code, message = code_of(lambda: pps.ApiStub(channel).list_pipeline())
        assert code == grpc.StatusCode.UNIMPLEMENTED and "pipelines" in message


def test_identity_calls_answer_as_pachd_without_auth(client, served):
    with pytest.raises(AuthServiceNotActivated):
        client.auth.who_am_i()
    with grpc.insecure_channel(f"127.0.0.1:{served[1]}") as channel:  # the bare stub: the status itself
        plain = auth.ApiStub(channel)
        for call in (plain.who_am_i, plain.get_configuration, plain.activate):
            code, message = code_of(call)
            assert (code, message) == (grpc.StatusCode.UNIMPLEMENTED, "the auth service is not activated")
    version = client.get_version()
    assert (version.major, version.minor) == (2, 12)
    cluster = client.admin.inspect_cluster()
    assert cluster.id and cluster.warnings_ok
    # the id stays the same from call to call
    assert client.admin.inspect_cluster().id == cluster.id
    with grpc.insecure_channel(f"127.0.0.1:{served[1]}") as channel:
        plain = admin.ApiStub(channel)
        warned = plain.inspect_cluster(current_project=pfs.Project(name="nope")).warnings
        assert any('Could not inspect project "nope"' in w for w in warned)
        assert not any("project" in w for w in plain.inspect_cluster(current_project=pfs.Project(name="default")).warnings)
