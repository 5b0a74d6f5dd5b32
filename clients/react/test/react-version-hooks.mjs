// Module resolution hooks registered by react-version.mjs (they run on the
// loader's thread). React's own CommonJS requires inside react-dom resolve
// from react-dom's directory, which is already the chosen project.
const REDIRECTED = /^(react|react-dom|jsdom)(\/.*)?$/;
let parentURL;

export function initialize(data) {
  parentURL = data.parentURL;
}

export function resolve(specifier, context, nextResolve) {
  if (REDIRECTED.test(specifier)) return nextResolve(specifier, { ...context, parentURL });
  return nextResolve(specifier, context);
}
