/** Where the tests find their real services. Override with the environment variables named here. */
export const ADMIN_DATABASE_URL =
  process.env.PGAIRLOCK_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.PGAIRLOCK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
