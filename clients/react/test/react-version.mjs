// `node --import ./test/react-version.mjs`: makes `react`, `react-dom` and
// `jsdom` (and their subpaths) resolve from the npm project named by
// LIVECAST_REACT_PROJECT (test/react18 or test/react19), wherever they are
// imported from, src/ included. Without this, src/index.js would get the React
// beside it (clients/react/node_modules, React 19 as a peer), whatever the run.
// The tests assert React.version against LIVECAST_REACT_MAJOR, so a resolution
// that slips back to the wrong copy fails instead of testing it twice.
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const project = process.env.LIVECAST_REACT_PROJECT;
if (!project) throw new Error('LIVECAST_REACT_PROJECT must name test/react18 or test/react19');
register('./react-version-hooks.mjs', import.meta.url, {
  data: { parentURL: pathToFileURL(resolve(project, 'package.json')).href },
});
