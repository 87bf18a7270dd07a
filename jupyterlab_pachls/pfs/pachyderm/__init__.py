"""``PachydermBackend``: the ``Backend`` interface on a Pachyderm cluster, through ``pachyderm-sdk``.

Configuration, as Pachyderm users expect: an explicit ``pachd_address``
(``grpc://host:30650`` or ``grpcs://...``) and optional ``auth_token``; else the
active context of ``config_path``, ``$PACH_CONFIG`` or ``~/.pachyderm/config.json``
(address, session token, CA certificates), as ``pachctl`` reads it. No call is
made at construction; the first operation waits at most ``connect_timeout``
seconds (default 5) for the cluster and raises ``Unavailable`` otherwise (never hangs).
Once connected, quick reads (projects, repos, branches, commits without waiting: what the panel
polls) have a deadline of ``quick_rpc_timeout`` seconds (default 5), every other call
``rpc_timeout`` (default 120), and so do the reads inside a commit, a landing or a branch move;
on streams and file data it is the silence between messages (a big transfer or listing is never
cut for its size). A cluster that accepts connections and never answers makes each call fail
within its deadline with an ``Unavailable`` naming the call and the address (``channel`` says
which call gets which, ListRepo's first message, and the stall guard).

How the embedded store's semantics are kept on pachd, where they differ:

- **Open commits.** In pachd a commit's parent is fixed when it starts and the
  branch moves to the open commit at once. Our contract says a commit lands on
  the branch head *at finish time*, and readers of the branch never see an
  open commit. So ``start_commit`` opens the commit on a private staging branch
  ``pachls-open-<hex>`` (parent: the branch head at start) and ``put_files`` /
  ``delete_file`` write there (one ModifyFile stream per call, however many
  files). ``finish_commit`` then *lands* it: it starts a commit on the target
  branch (pachd picks the branch head as parent and blocks other landings on
  that branch until it is finished: "parent commit ... has not been finished",
  retried with backoff), checks ``expected_parent`` against that parent (a real
  compare-and-set: nobody else can land meanwhile), finishes the staged commit,
  and copies its changes (``DiffFile`` against its own parent: copies for
  added/modified files, deletions for deleted files and vanished directories)
  server-side into the landing commit (``CopyFile``, no file data moves), then
  finishes it and removes the staging branch. The landed commit therefore has a
  new id, which ``finish_commit`` returns; the id from ``start_commit`` stays
  resolvable (a finished commit off any branch) so finishing it twice is a
  ``Conflict``, as in the embedded store. An open commit is one whose staging
  branch still exists. Readers that find a landing commit at a branch head see
  its parent until it is finished.
- **Commit metadata.** Message, author, provenance pairs, the metadata dict,
  the target branch and the original start time are stored in the commit
  *description*: the message, then ``\\n\\n---pachls---\\n`` and one JSON line.
  pachd keeps provenance per branch (for pipelines) and has no field for an
  author, so the description is where a user commit has room; ``pachctl
  inspect commit`` shows it. Commits made by other clients (no such trailer)
  read back with their description as the message, ``created_by`` as author,
  their metadata and direct provenance.
- **Branch moves** (rollbacks) are recorded as JSON files in a small metadata
  repo ``pachls-meta`` (default project), one file per move under
  ``/branch-moves/<project>/<repo>/<branch>/``, written through the same commit
  path as everything else. It is hidden from ``list_repos``. The ``expected_head``
  check of ``move_branch`` is atomic within one process; pachd has no
  conditional branch update, so two processes racing to move the same branch
  can both pass it.
- **Files** hold pachd's own hash (hex), with ``hash_kind`` ``opaque``: pachd hashes its
  chunk references, not the bytes, so nothing here compares it with a hash of content (the
  mounts hash what they download). ``n_files`` comes from the Pachyderm-API server of this
  package (pachd has no file count and reports 0).
- **Branch in replies.** pachd clears ``Commit.branch`` in every reply, so nothing here reads
  it: our commits record their branch (and their staging branch) in the description, a branch's
  head is known from the branch asked for, and any other commit has ``branch`` None.
- **The repos listing** (``list_branches`` of every repo, what the panel polls) is ListBranch
  without a repo (pachd refuses that with auth on: then one per repo), and an InspectCommit only
  for a head not seen before (and its parent while it is a landing in progress): the branch as
  shown at a finished head is kept, and inspected again once older than ``LISTED_RECHECK``, a few
  a listing (``RECHECKED_PER_LISTING``): a finished commit seldom changes, but a squash re-parents
  it and ``EditMetadata`` edits it. What is kept is what the last two complete listings saw.
- **AUTO commits.** ``CreateBranch`` without a head makes an empty, finished ``AUTO`` commit
  that becomes the branch head; it shows as a commit of origin ``AUTO`` (in histories, as a
  mount's base, as the parent of the branch's first commit, as a rollback target). A commit on
  a branch that does not exist yet creates the branch with the landed commit (no AUTO commit,
  no parent), as the embedded store does.

The parts, each one job: ``channel`` (where pachd is, the gRPC channel, readiness, call options),
``errors`` (a failed call as a typed error), ``messages`` (pachd's messages to and from the model),
``refs`` (refs to commits as readers see them), ``landing`` (staging and landing commits) with
``orphans`` (what failed calls left behind), ``moves`` (branch moves in the meta repo), ``reads``
(histories, files, diffs); ``backend`` composes them into ``PachydermBackend``.
"""

from .backend import PachydermBackend
from .messages import STAGING_PREFIX
from .moves import META_REPO

__all__ = ["PachydermBackend", "STAGING_PREFIX", "META_REPO"]
