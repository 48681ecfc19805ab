// `node --require <this file> …`: at exit, one line on stderr, `loaded-packages ["…"]`, naming the packages
// whose CommonJS modules the process loaded, and `node:undici` when node loaded its bundled undici
// (test/unit/cli-help.test.ts: what a start costs).
process.on('exit', () => {
  const names = new Set();
  for (const file of Object.keys(require.cache)) {
    const m = /node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(file);
    if (m) names.add(m[1].replace('\\', '/'));
  }
  if (process.moduleLoadList.some((m) => m.endsWith('internal/deps/undici/undici'))) names.add('node:undici');
  process.stderr.write(`loaded-packages ${JSON.stringify([...names].sort())}\n`);
});
