/**
 * Short names for the JSON shapes of the pachls REST API. The shapes come from
 * `types.ts`, generated from jupyterlab_pachls/openapi.yaml (`jlpm generate:api`).
 */
import { components, operations } from './types';

type Schemas = components['schemas'];

/** The JSON answer of an operation (by its `operationId`) with status `S`. */
export type Answer<O extends keyof operations, S extends number = 200> =
  operations[O]['responses'] extends {
    [status in S]: { content: { 'application/json': infer T } };
  }
    ? T
    : never;

/** The JSON body an operation (by its `operationId`) is sent. */
export type Body<O extends keyof operations> = operations[O]['requestBody'] extends
  | { content: { 'application/json': infer T } }
  | undefined
  ? T
  : never;

export type IProvenance = Schemas['Provenance'];
export type ICommit = Schemas['Commit'];
export type IBranch = Schemas['Branch'];
export type IRepo = Schemas['Repo'];
export type IHealth = Schemas['Health'];
/** `GET/PUT /backend`. The auth token is never returned. */
export type IBackendConfig = Schemas['BackendConfig'];
/** Body of `PUT /backend`. */
export type BackendRequest = Schemas['BackendRequest'];
export type IReposResponse = Answer<'listRepos'>;
/** `GET /panel`: health, repos and mounts in one answer; a failed part is null, its error in `errors`. */
export type IPanel = Answer<'getPanel'>;
/** Why one part of `GET /panel` failed, with the status its own route would answer. */
export type IPartError = Schemas['PartError'];
export type ICommitPage = Answer<'listCommits'>;
export type IFileInfo = Schemas['FileInfo'];
export type IFileChange = Schemas['FileChange'];
export type IDiff = Answer<'diffCommits'>;

export type IMountStatus = Schemas['MountStatus'];
export type MountMode = IMountStatus['mode'];
export type IMountsResponse = Answer<'listMounts'>;
export type IMountRequest = Body<'createMount'>;
export type IChange = Schemas['Change'];
export type IChanges = Schemas['Changes'];
export type ICommitResult = Answer<'commitMount', 201>;

/**
 * Who commits, rollbacks and label rounds are recorded as. `required` is true
 * when nothing is known: routes that write history then answer 409
 * `identity_required`.
 */
export type IIdentity = Schemas['Identity'];
/** Where the author of commits comes from. */
export type IdentitySource = NonNullable<IIdentity['source']>;
