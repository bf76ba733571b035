#!/usr/bin/env node
// The Digital Credentials Consortium's verifiable credential libraries
// (@digitalcredentials/vc with DataIntegrityProof and the eddsa-rdfc-2022
// cryptosuite), driven from the command line so that backpackd's tests can
// check our Data Integrity proofs against an independent implementation.
//
//   node dcc.js sign KEY_PEM [CREDENTIALS|-] [CREATED]
//       Signs each credential with an eddsa-rdfc-2022 DataIntegrityProof made
//       with the Ed25519 key in KEY_PEM (PKCS#8 "PRIVATE KEY" PEM). The
//       verificationMethod is did:key:<multikey>#<multikey>; CREATED, when
//       given, is the proof's `created` (else now). Prints the signed
//       credential(s).
//   node dcc.js verify [CREDENTIALS|-]
//       Verifies each credential as @digitalcredentials/vc's verifyCredential
//       does (proof, issuer = key controller, validity dates) and prints
//       {"verified": bool, "error": string|null} for each.
//   node dcc.js bench N CREDENTIALS
//       Verifies every credential of the file N times in this process (after
//       a one-second warm-up, in which each must verify) and prints
//       {"verifications": .., "seconds": .., "per_second": ..}.
//
// CREDENTIALS is a file (or "-": standard input) holding one credential or a
// JSON array of them; the output has the same shape. Contexts and did:key
// documents come only from @digitalcredentials/security-document-loader's
// bundled copies: fetching anything from the network is refused.
//
// Exits 0 after printing (a failed verification is a verdict, not an
// error); 1 on bad usage, a missing package, unreadable input or any other
// failure, with a message on stderr.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

function fail(message) {
  console.error(`dcc.js: ${message}`);
  process.exit(1);
}

// Nothing here may reach the network: every document the libraries ask for
// must come from the bundled loader.
function refuseNetwork() {
  globalThis.fetch = async (resource) => {
    throw new Error(`network access refused: ${resource && resource.url ? resource.url : resource}`);
  };
  for (const name of ['http', 'https']) {
    const client = require(name);
    const refuse = (url) => {
      throw new Error(`network access refused: ${typeof url === 'string' ? url : 'request'}`);
    };
    client.request = refuse;
    client.get = refuse;
  }
}

async function loadLibraries() {
  try {
    const [vc, dataIntegrity, eddsa, multikey, loader] = await Promise.all([
      import('@digitalcredentials/vc'),
      import('@digitalcredentials/data-integrity'),
      import('@digitalcredentials/eddsa-rdfc-2022-cryptosuite'),
      import('@digitalcredentials/ed25519-multikey'),
      import('@digitalcredentials/security-document-loader'),
    ]);
    return {
      vc,
      DataIntegrityProof: dataIntegrity.DataIntegrityProof,
      cryptosuite: eddsa.cryptosuite,
      Ed25519Multikey: multikey,
      documentLoader: loader.securityLoader({fetchRemoteContexts: false}).build(),
    };
  } catch (err) {
    if (err.code !== 'ERR_MODULE_NOT_FOUND' && err.code !== 'MODULE_NOT_FOUND') throw err;
    fail(`the DCC packages are not installed (node_modules is missing): run \`npm ci\` in ${__dirname}`);
  }
}

function readInput(file) {
  const text = !file || file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    fail(`${file || 'stdin'} is not JSON: ${err.message}`);
  }
}

// The Ed25519 key pair of a PKCS#8 PEM, as a Multikey whose controller is
// its did:key.
async function keyPairFromPem(lib, pemFile) {
  const jwk = crypto.createPrivateKey(fs.readFileSync(pemFile, 'utf8')).export({format: 'jwk'});
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.d) fail(`${pemFile} does not hold an Ed25519 private key`);
  const seed = new Uint8Array(Buffer.from(jwk.d, 'base64url'));
  const probe = await lib.Ed25519Multikey.generate({seed});
  const controller = `did:key:${probe.publicKeyMultibase}`;
  return lib.Ed25519Multikey.generate({seed, controller});
}

async function sign(lib, keyFile, input, created) {
  const keyPair = await keyPairFromPem(lib, keyFile);
  const signOne = async (credential) => {
    const suite = new lib.DataIntegrityProof({
      signer: keyPair.signer(),
      cryptosuite: lib.cryptosuite,
      date: created || undefined,
    });
    return lib.vc.issue({credential: structuredClone(credential), suite, documentLoader: lib.documentLoader});
  };
  if (!Array.isArray(input)) return signOne(input);
  const out = [];
  for (const credential of input) out.push(await signOne(credential));
  return out;
}

function errorText(result) {
  const errors = [];
  const add = (error) => {
    if (!error) return;
    if (Array.isArray(error)) return error.forEach(add);
    if (error.errors) return add(error.errors);
    errors.push(error.message || String(error));
  };
  add(result.error);
  for (const r of result.results || []) add(r.error);
  return errors.length ? [...new Set(errors)].join('; ') : 'not verified';
}

async function verifyOne(lib, credential) {
  const suite = new lib.DataIntegrityProof({cryptosuite: lib.cryptosuite});
  const result = await lib.vc.verifyCredential({credential, suite, documentLoader: lib.documentLoader});
  return result.verified === true ? {verified: true, error: null} : {verified: false, error: errorText(result)};
}

async function verify(lib, input) {
  if (!Array.isArray(input)) return verifyOne(lib, input);
  const out = [];
  for (const credential of input) out.push(await verifyOne(lib, credential));
  return out;
}

async function bench(lib, rounds, input) {
  const credentials = Array.isArray(input) ? input : [input];
  if (credentials.length === 0) fail('no credentials to verify');
  // Warm-up: loads and processes every context, as a long-running verifier
  // would have, and gives the JIT a second to compile the hot paths (the
  // rate keeps rising for about that long); also makes sure the figures are
  // for valid proofs.
  const warmUntil = process.hrtime.bigint() + 1_000_000_000n;
  do {
    for (const [i, credential] of credentials.entries()) {
      const verdict = await verifyOne(lib, credential);
      if (!verdict.verified) fail(`credential ${i} does not verify: ${verdict.error}`);
    }
  } while (process.hrtime.bigint() < warmUntil);
  let verifications = 0;
  const start = process.hrtime.bigint();
  for (let round = 0; round < rounds; round++) {
    for (const credential of credentials) {
      const verdict = await verifyOne(lib, credential);
      if (!verdict.verified) fail(`credential failed during the run: ${verdict.error}`);
      verifications++;
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {verifications, seconds, per_second: verifications / seconds};
}

async function main() {
  const [command, ...args] = process.argv.slice(2);
  refuseNetwork();
  let output;
  if (command === 'sign' && args.length >= 1 && args.length <= 3) {
    const lib = await loadLibraries();
    output = await sign(lib, args[0], readInput(args[1]), args[2]);
  } else if (command === 'verify' && args.length <= 1) {
    const lib = await loadLibraries();
    output = await verify(lib, readInput(args[0]));
  } else if (command === 'bench' && args.length === 2 && Number.isInteger(Number(args[0])) && Number(args[0]) > 0) {
    const lib = await loadLibraries();
    output = await bench(lib, Number(args[0]), readInput(args[1]));
  } else {
    fail(`usage: node ${path.basename(__filename)} sign KEY_PEM [CREDENTIALS|-] [CREATED] | verify [CREDENTIALS|-] | bench N CREDENTIALS`);
  }
  process.stdout.write(JSON.stringify(output) + '\n');
}

// jsonld.js puts what it refused (the term, the safe-mode event) in details.
function describe(err) {
  if (!err) return String(err);
  let text = err.stack || String(err);
  if (err.details) {
    const {event, ...rest} = err.details;
    text += `\ndetails: ${JSON.stringify(event ? {code: event.code, message: event.message, details: event.details} : rest)}`;
  }
  return text;
}

main().catch((err) => fail(describe(err)));
