import { requestAPI } from './request';
import { IHealth, IRepo, IReposResponse } from './types';

export * from './request';
export * from './types';

/** Backend kind, address and whether FUSE can be used. */
export function getHealth(): Promise<IHealth> {
  return requestAPI<IHealth>('health');
}

/** Every repo with its branches, in one request. */
export function listRepos(): Promise<IReposResponse> {
  return requestAPI<IReposResponse>('repos');
}

/** Create an empty repo. */
export function createRepo(name: string, description = ''): Promise<IRepo> {
  return requestAPI<IRepo>('repos', {
    method: 'POST',
    body: { name, description }
  });
}
