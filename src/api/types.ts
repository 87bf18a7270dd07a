/** JSON shapes answered by the pachls REST API. */

export interface IProvenance {
  repo: string;
  commit: string;
  branch: string | null;
}

export interface ICommit {
  id: string;
  repo: string;
  branch: string | null;
  parent: string | null;
  message: string;
  author: string;
  started: string | null;
  finished: string | null;
  provenance: IProvenance[];
  origin: string;
  size_bytes: number;
  n_files: number;
}

export interface IBranch {
  repo: string;
  name: string;
  head: ICommit | null;
}

export interface IRepo {
  name: string;
  project: string;
  description: string;
  created: string | null;
  size_bytes: number;
  branches: IBranch[];
}

export interface IBackendInfo {
  kind: string | null;
  address: string | null;
}

export interface IReposResponse {
  backend: IBackendInfo;
  repos: IRepo[];
}

export interface IHealth {
  backend: IBackendInfo & { connected: boolean; error: string | null };
  store_dir: string;
  fuse: { available: boolean };
}
