// Before `npm test`: the tests start real redis-server processes (Debian's package). Where it is missing, it
// is installed with apt when this runs as root; otherwise the tests stop at once, naming the command to run.
import { spawnSync } from 'node:child_process';

const found = () => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
if (!found()) {
  const root = process.getuid?.() === 0;
  const apt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (root && apt) {
    console.error('redis-server is not installed: installing Debian\'s package for the tests (apt-get install redis-server)');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server'], { stdio: 'inherit', env }).status === 0;
    if (!install()) {
      spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
      install();
    }
  }
  if (!found()) {
    console.error('The tests need redis-server on the PATH. Install it (Debian: sudo apt-get install redis-server) and run npm test again.');
    process.exit(1);
  }
}
