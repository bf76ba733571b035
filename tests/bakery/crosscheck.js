#!/usr/bin/env node
// Cross-checks backpackd's badge baking against openbadges-bakery, an
// independent implementation (Mozilla's baker for PNG and SVG):
//   (a) images baked by backpackd (through bake_tool) are unbaked by the
//       bakery, which must find exactly what was baked;
//   (b) images baked by the bakery are unbaked by backpackd, which must find
//       exactly what the bakery was given;
// each on top of a fresh image and on top of an image the other side baked
// (replacement). The bakery knows only OB 1.x/2.0 assertions ("openbadges"),
// so OB 3.0 credentials are checked one way: the bakery must not mistake
// them for assertions, and must still parse the image around them.
//
// Usage: node crosscheck.js /path/to/bake_tool
// Exits 0 when every check agrees, 1 on any disagreement or missing setup.
'use strict';

const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');

const toolPath = process.argv[2];
if (!toolPath) {
  console.error('usage: node crosscheck.js /path/to/bake_tool');
  process.exit(1);
}
if (!fs.existsSync(toolPath)) {
  console.error(`bake_tool not found at ${toolPath}`);
  process.exit(1);
}

let bakery;
try {
  installBitWriterShim();
  bakery = require('openbadges-bakery');
} catch (err) {
  if (err.code !== 'MODULE_NOT_FOUND') throw err;
  console.error(`openbadges-bakery is not installed (node_modules is missing): run \`npm ci\` in ${__dirname}`);
  process.exit(1);
}

// The bakery writes PNG chunks through streampng, which builds them with
// bitwriter 0.0.x: objects that inherit Buffer.prototype without being
// Uint8Arrays. Node.js 4 and later reject those (Buffer.concat, .length), so
// the bakery's PNG baking throws before writing anything. This shim only
// changes the storage: a writer becomes a real zero-filled Buffer carrying
// bitwriter's own methods, which is what a writer behaved like on the Node.js
// versions bitwriter was written for. Chunk layout, CRCs and the baking logic
// stay the bakery's and streampng's.
function installBitWriterShim() {
  const bakeryDir = path.dirname(require.resolve('openbadges-bakery/package.json'));
  const streampngDir = path.dirname(require.resolve('streampng/package.json', {paths: [bakeryDir]}));
  const modulePath = require.resolve('bitwriter', {paths: [streampngDir]});
  const Original = require(modulePath);
  function CompatBitWriter(length, endianness) {
    if (typeof length !== 'number') throw new TypeError('bitwriter shim: only numeric lengths are used by streampng');
    const writer = Buffer.alloc(length);
    for (const name of Object.keys(Original.prototype)) writer[name] = Original.prototype[name];
    writer._pos = 0;
    writer._endianness = endianness || 'BE';
    writer._buffer = writer;
    writer._generateMethodTable();
    return writer;
  }
  Object.assign(CompatBitWriter, Original);
  CompatBitWriter.prototype = Original.prototype;
  require.cache[modulePath].exports = CompatBitWriter;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bakery-crosscheck-'));
process.on('exit', () => fs.rmSync(work, {recursive: true, force: true}));

// ---------------------------------------------------------------------------
// Inputs. The bakery sniffs the first 256 bytes, so images are larger than that.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

function makePng(width, height) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 2;  // truecolour
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let i = 1; i < row.length; i++) row[i] = (i * 7 + y * 13) & 0xff;
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('tEXt', Buffer.from('Comment\0backpackd bakery cross-check image', 'latin1')),
    pngChunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function makeSvg() {
  return Buffer.from(
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">\n' +
      '  <title>Cross-check badge</title>\n' +
      '  <circle cx="50" cy="50" r="40" fill="#e44d26"/>\n' +
      '  <path d="M20 50 L45 75 L80 30" stroke="#ffffff" stroke-width="8" fill="none"/>\n' +
      '  <text x="50" y="95" font-size="8" text-anchor="middle">backpackd</text>\n' +
      '</svg>\n',
      'utf8');
}

const ASSERTION = {
  '@context': 'https://w3id.org/openbadges/v2',
  type: 'Assertion',
  id: 'https://example.org/assertions/123',
  recipient: {type: 'email', hashed: false, identity: 'alice@example.org'},
  badge: 'https://example.org/badges/5',
  verification: {type: 'hosted'},
  verify: {type: 'hosted', url: 'https://example.org/assertions/123'},
  issuedOn: '2016-12-31T23:59:59+00:00',
  narrative: 'Caf\u00e9 <b>&</b> "quoted"',
};
const ASSERTION_2 = {...ASSERTION, id: 'https://example.org/assertions/456',
                     verify: {type: 'hosted', url: 'https://example.org/assertions/456'}};
const JWS = 'eyJhbGciOiJSUzI1NiJ9.eyJ1aWQiOiJhYmMiLCJyZWNpcGllbnQiOnsidHlwZSI6ImVtYWlsIn19.' +
    'c2lnbmF0dXJlLWJ5dGVzLXRoYXQtYXJlLW5vdC1yZWFs';
const URL = 'https://example.org/assertions/789';
const CREDENTIAL = JSON.stringify({
  '@context': ['https://www.w3.org/ns/credentials/v2',
               'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json'],
  id: 'urn:uuid:91537dba-56cb-11ec-bf63-0242ac130002',
  type: ['VerifiableCredential', 'OpenBadgeCredential'],
  name: 'Teamwork',
});

const IMAGES = {png: makePng(20, 20), svg: makeSvg()};

// ---------------------------------------------------------------------------
// The two implementations.

let fileCounter = 0;
function tempFile(contents) {
  const file = path.join(work, `f${fileCounter++}`);
  if (contents !== undefined) fs.writeFileSync(file, contents);
  return file;
}

function runTool(args) {
  const result = childProcess.spawnSync(toolPath, args, {encoding: 'utf8'});
  if (result.error) throw result.error;
  return result;
}

// Bakes with backpackd; returns the baked image.
function ourBake(image, kind, text, verifyUrl) {
  const out = tempFile();
  const args = ['bake', tempFile(image), kind, tempFile(text), out];
  if (verifyUrl) args.push(verifyUrl);
  const result = runTool(args);
  if (result.status !== 0) {
    throw new Error(`bake_tool bake failed (${result.status}): ${result.stdout}${result.stderr}`);
  }
  return fs.readFileSync(out);
}

// Extracts with backpackd; returns the tool's JSON answer.
function ourExtract(image) {
  const result = runTool(['extract', tempFile(image)]);
  if (result.status !== 0 && result.status !== 1) {
    throw new Error(`bake_tool extract failed (${result.status}): ${result.stderr}`);
  }
  return JSON.parse(result.stdout);
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: the bakery did not answer within 10 s`)), 10000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The bakery's extract: resolves to {data} or {error}.
function bakeryExtract(image) {
  return withTimeout(new Promise((resolve) => {
    bakery.extract(image, (err, data) => resolve(err ? {error: err} : {data: String(data)}));
  }), 'extract');
}

// The bakery's bake: resolves to a Buffer.
function bakeryBake(options) {
  return withTimeout(new Promise((resolve, reject) => {
    bakery.bake(options, (err, out) => (err ? reject(err) : resolve(Buffer.from(out))));
  }), 'bake');
}

// ---------------------------------------------------------------------------
// Checks.

const failures = [];
let passed = 0;

function check(name, condition, detail) {
  if (condition) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failures.push(name);
    console.log(`FAIL ${name}${detail ? `\n     ${detail}` : ''}`);
  }
}

async function safely(name, fn) {
  try {
    await fn();
  } catch (err) {
    check(name, false, err && err.stack ? err.stack : String(err));
  }
}

// (a) backpackd bakes, the bakery unbakes.
async function oursThenBakery(format) {
  const image = IMAGES[format];
  const cases = [
    ['assertion JSON', JSON.stringify(ASSERTION)],
    ['assertion JWS', JWS],
    ['assertion URL', URL],
  ];
  for (const [label, text] of cases) {
    const name = `(a) ${format}: backpackd bakes ${label}, bakery unbakes it`;
    await safely(name, async () => {
      const got = await bakeryExtract(ourBake(image, 'assertion', text));
      check(name, got.data === text, got.error ? `bakery error: ${got.error.message}` : `bakery read ${got.data}`);
    });
  }
  // Replacing an assertion the bakery baked.
  const name = `(a) ${format}: backpackd re-bakes over a bakery-baked image, bakery unbakes the new one`;
  await safely(name, async () => {
    const theirs = await bakeryBake({image, assertion: ASSERTION});
    const text = JSON.stringify(ASSERTION_2);
    const got = await bakeryExtract(ourBake(theirs, 'assertion', text));
    check(name, got.data === text, got.error ? `bakery error: ${got.error.message}` : `bakery read ${got.data}`);
  });
  // An OB 3.0 credential is not an OB 2.0 assertion; the bakery must say the image is unbaked.
  const credName = `(a) ${format}: backpackd bakes an OB 3.0 credential, bakery finds no assertion`;
  await safely(credName, async () => {
    const got = await bakeryExtract(ourBake(image, 'credential', CREDENTIAL));
    check(credName, got.error && got.error.code === 'IMAGE_UNBAKED',
          got.error ? `bakery error: ${got.error.code} ${got.error.message}` : `bakery read ${got.data}`);
  });
}

function expectOurs(name, got, form, data, verifyUrl) {
  const ok = !got.error && got.kind === 'assertion' && got.form === form && got.data === data &&
      (verifyUrl === undefined || got.verify_url === verifyUrl);
  check(name, ok, `backpackd read ${JSON.stringify(got)}`);
}

// (b) the bakery bakes, backpackd unbakes.
async function bakeryThenOurs(format) {
  const image = IMAGES[format];
  const json = JSON.stringify(ASSERTION);
  const cases = [
    ['assertion JSON', {assertion: ASSERTION}, 'json', json,
     format === 'svg' ? ASSERTION.verify.url : ''],
    ['signature (JWS)', {signature: JWS}, 'jws', JWS, ''],
    ['URL', {url: URL}, 'url', URL, ''],
  ];
  for (const [label, options, form, data, verifyUrl] of cases) {
    const name = `(b) ${format}: bakery bakes ${label}, backpackd unbakes it`;
    await safely(name, async () => {
      const baked = await bakeryBake({image, ...options});
      expectOurs(name, ourExtract(baked), form, data, verifyUrl);
    });
  }
  // Replacing an assertion backpackd baked.
  const name = `(b) ${format}: bakery re-bakes over a backpackd-baked image, backpackd unbakes the new one`;
  await safely(name, async () => {
    const ours = ourBake(image, 'assertion', JSON.stringify(ASSERTION_2));
    const baked = await bakeryBake({image: ours, signature: JWS});
    expectOurs(name, ourExtract(baked), 'jws', JWS, '');
  });
}

(async () => {
  for (const format of ['png', 'svg']) {
    await oursThenBakery(format);
    await bakeryThenOurs(format);
  }
  console.log(`\n${passed} checks agree, ${failures.length} disagree`);
  if (failures.length > 0) {
    console.log('disagreements:\n  ' + failures.join('\n  '));
    process.exit(1);
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
