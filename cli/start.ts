export async function runStart(_opts: { config?: string }): Promise<void> {
  throw new Error('the proxy is being built in this commit series');
}
