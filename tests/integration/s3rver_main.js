'use strict';
/*
 * s3rver_main.js - s3rver 3 for the S3 client's tests, with the checks of
 * real S3 that s3rver 3 leaves out.
 *
 *   node s3rver_main.js --module DIR/node_modules/s3rver --directory D \
 *        --bucket NAME [--port 0] [--address 127.0.0.1] [--log FILE]
 *        [--key KEY.pem --cert CERT.pem]
 *
 * prints "listening 127.0.0.1:PORT" once it answers (HTTPS with --key and
 * --cert).  s3rver 3.7 checks that
 * the access key id exists, that x-amz-date is within 15 minutes and that
 * x-amz-content-sha256 is there, but it never computes a SigV4 signature
 * ("Signature version 4 calculation is unimplemented") and checks neither
 * Content-MD5 nor the payload's SHA-256.  This middleware, placed before all
 * of s3rver's, does what S3 does, from the request as it arrived:
 *
 *   - the signature: canonical request from the raw path and query
 *     (decoded, then encoded again the RFC 3986 way: a client that sends
 *     anything but the canonical form signs something else), the signed
 *     headers, the payload hash; credential scope us-east-1/s3; every
 *     x-amz-* header must be signed.  Failures: SignatureDoesNotMatch (403),
 *     InvalidAccessKeyId (403), AuthorizationHeaderMalformed (400),
 *     RequestTimeTooSkewed (403).  Anonymous requests: AccessDenied.
 *   - the body: x-amz-content-sha256 (XAmzContentSHA256Mismatch),
 *     Content-MD5 (InvalidDigest, BadDigest), x-amz-checksum-sha256
 *     (BadDigest); DeleteObjects without Content-MD5 is refused as S3 does
 *     (InvalidRequest).
 *   - AbortMultipartUpload, which s3rver 3 does not know (405): the upload's
 *     parts are removed, 204; NoSuchUpload (404) for an unknown id.
 *
 * And one fix (settled() below): s3rver 3.7 answers a PUT or an UploadPart
 * once the body has passed its MD5 transform, before its write stream has
 * written the file, so a GET or a CompleteMultipartUpload right after it
 * can read a short file (seen in CI: a 12 MiB multipart object completed
 * as 10 MiB).  S3 answers only once the object is stored.
 *
 * With --log, every request is a JSON line {method, url, status} in FILE.
 * The keys are s3rver's own account: S3RVER / S3RVER.
 */

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { PassThrough } = require('stream');

function parseArgs(argv) {
  const a = { port: '0', address: '127.0.0.1' };
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) {
      throw new Error('usage: s3rver_main.js --module M --directory D --bucket B [--port P] ' +
        '[--address A] [--log F] [--key K --cert C]');
    }
    a[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['module', 'directory', 'bucket']) {
    if (!a[k]) throw new Error('missing --' + k);
  }
  return a;
}

const args = parseArgs(process.argv.slice(2));
const S3rver = require(args.module);
const S3Error = require(path.join(args.module, 'lib', 'models', 'error'));

const SECRETS = { S3RVER: 'S3RVER' };   /* s3rver's account (lib/models/account.js) */
const REGION = 'us-east-1';
const SKEW_MS = 15 * 60 * 1000;
const log = args.log ? fs.openSync(args.log, 'a') : null;

/* RFC 3986: everything but A-Z a-z 0-9 - _ . ~ percent-encoded. */
function uriEncode(s) {
  return encodeURIComponent(s).replace(
    /[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function decode(s, what) {
  try {
    return decodeURIComponent(s);
  } catch (e) {
    throw new S3Error('InvalidURI', `Couldn't parse the specified URI (${what}).`);
  }
}

function canonicalUri(rawPath) {
  return rawPath.split('/').map((seg) => uriEncode(decode(seg, 'path'))).join('/');
}

function canonicalQuery(rawQuery) {
  if (!rawQuery) return '';
  return rawQuery.split('&').filter((p) => p !== '').map((p) => {
    const eq = p.indexOf('=');
    const name = eq < 0 ? p : p.slice(0, eq);
    const value = eq < 0 ? '' : p.slice(eq + 1);
    return [uriEncode(decode(name, 'query')), uriEncode(decode(value, 'query'))];
  }).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0))
    .map(([n, v]) => n + '=' + v).join('&');
}

function hmac(key, data) {
  return crypto.createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256hex(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/* 20130524T000000Z -> ms */
function amzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
}

function parseAuthorization(auth) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/
    .exec(auth);
  if (!m) {
    throw new S3Error('AuthorizationHeaderMalformed',
      'The authorization header is malformed; it must be AWS4-HMAC-SHA256 ' +
      'Credential=..., SignedHeaders=..., Signature=...');
  }
  const [accessKeyId, date, region, service, term] = m[1].split('/');
  if (term !== 'aws4_request' || service !== 's3' || !/^\d{8}$/.test(date || '')) {
    throw new S3Error('AuthorizationHeaderMalformed',
      `The authorization header is malformed; the Credential ${m[1]} is not ` +
      'KEY/YYYYMMDD/REGION/s3/aws4_request.');
  }
  if (region !== REGION) {
    throw new S3Error('AuthorizationHeaderMalformed',
      `The authorization header is malformed; the region '${region}' is wrong; ` +
      `expecting '${REGION}'`);
  }
  return { accessKeyId, date, region, service, signedHeaders: m[2].split(';'), signature: m[3] };
}

function verifySignature(req) {
  const h = req.headers;
  if (!h.authorization) {
    throw new S3Error('AccessDenied', 'Access Denied (the request is not signed)');
  }
  const a = parseAuthorization(h.authorization);
  const secret = SECRETS[a.accessKeyId];
  if (secret === undefined) {
    throw new S3Error('InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.',
      { AWSAccessKeyId: a.accessKeyId });
  }
  const stamp = h['x-amz-date'];
  const t = amzDate(stamp);
  if (isNaN(t)) {
    throw new S3Error('AccessDenied', 'AWS authentication requires a valid x-amz-date header');
  }
  if (Math.abs(Date.now() - t) > SKEW_MS) {
    throw new S3Error('RequestTimeTooSkewed',
      'The difference between the request time and the current time is too large.');
  }
  if (!stamp.startsWith(a.date)) {
    throw new S3Error('AuthorizationHeaderMalformed',
      `The authorization header is malformed; Invalid credential date "${a.date}". ` +
      'This date is not the same as X-Amz-Date.');
  }
  const payload = h['x-amz-content-sha256'];
  if (payload === undefined) {
    throw new S3Error('InvalidRequest',
      'Missing required header for this request: x-amz-content-sha256');
  }
  if (!/^(UNSIGNED-PAYLOAD|[0-9a-f]{64})$/.test(payload)) {
    throw new S3Error('InvalidArgument',
      'x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.');
  }
  for (const name of ['host', ...Object.keys(h).filter((n) => n.startsWith('x-amz-'))]) {
    if (!a.signedHeaders.includes(name)) {
      throw new S3Error('AccessDenied',
        `There were headers present in the request which were not signed: ${name}`);
    }
  }
  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
  const headerLines = a.signedHeaders.map((name) => {
    const v = h[name];
    return name + ':' + (v === undefined ? '' : String(v).trim().replace(/\s+/g, ' '));
  });
  const canonical = [req.method, canonicalUri(rawPath), canonicalQuery(rawQuery),
    headerLines.join('\n') + '\n', a.signedHeaders.join(';'), payload].join('\n');
  const scope = [a.date, a.region, a.service, 'aws4_request'].join('/');
  const toSign = ['AWS4-HMAC-SHA256', stamp, scope, sha256hex(canonical)].join('\n');
  let key = hmac('AWS4' + secret, a.date);
  key = hmac(key, a.region);
  key = hmac(key, a.service);
  key = hmac(key, 'aws4_request');
  const want = crypto.createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
  if (want !== a.signature) {
    throw new S3Error('SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. ' +
      'Check your key and signing method.',
      { AWSAccessKeyId: a.accessKeyId, CanonicalRequest: canonical, StringToSign: toSign });
  }
  return payload;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function verifyBody(req, payload, body) {
  const h = req.headers;
  if (h['content-md5'] !== undefined) {
    const want = Buffer.from(h['content-md5'], 'base64');
    if (want.length !== 16 || want.toString('base64') !== h['content-md5']) {
      throw new S3Error('InvalidDigest', 'The Content-MD5 you specified was invalid.');
    }
    if (!crypto.createHash('md5').update(body).digest().equals(want)) {
      throw new S3Error('BadDigest',
        'The Content-MD5 you specified did not match what we received.');
    }
  }
  if (h['x-amz-checksum-sha256'] !== undefined &&
      crypto.createHash('sha256').update(body).digest('base64') !== h['x-amz-checksum-sha256']) {
    throw new S3Error('BadDigest',
      'The SHA256 you specified did not match the calculated checksum.');
  }
  if (payload !== 'UNSIGNED-PAYLOAD' && sha256hex(body) !== payload) {
    const e = new S3Error('XAmzContentSHA256Mismatch',
      "The provided 'x-amz-content-sha256' header does not match what was computed.");
    e.status = 400;     /* as S3; s3rver 3 does not know this code */
    throw e;
  }
}

/* s3rver reads the body from ctx.req: give it the bytes already read. */
function replay(req, body) {
  const r = new PassThrough();
  for (const k of ['headers', 'rawHeaders', 'method', 'url', 'httpVersion', 'httpVersionMajor',
    'httpVersionMinor', 'socket', 'trailers', 'rawTrailers']) {
    r[k] = req[k];
  }
  r.end(body);
  return r;
}

function abortUpload(ctx, store) {
  const [bucket] = ctx.path.split('/').filter(Boolean);
  const id = ctx.query.uploadId;
  const dir = path.join(store.getResourcePath(bucket, undefined, 'uploads'), String(id));
  if (!/^[0-9a-f]+$/.test(id || '') || !fs.existsSync(dir)) {
    throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: id });
  }
  fs.rmSync(dir, { recursive: true, force: true });
  ctx.status = 204;
}

/* Answer a PUT or an UploadPart only once its file holds every byte. */
function settled(store) {
  const fullSize = async (file, size) => {
    for (let i = 0; i < 6000; i++) {
      try {
        if (fs.statSync(file).size >= size) return;
      } catch (e) {
        if (e.code !== 'ENOENT') throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error(`s3rver_main: ${file} never reached ${size} bytes`);
  };
  const putPart = store.putPart.bind(store);
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const r = await putPart(bucket, uploadId, partNumber, content);
    const dir = path.join(store.getResourcePath(bucket, undefined, 'uploads'), String(uploadId));
    await fullSize(path.join(dir, partNumber.toString()), r.size);
    return r;
  };
  const putObject = store.putObject.bind(store);
  store.putObject = async (object) => {
    const r = await putObject(object);
    await fullSize(store.getResourcePath(object.bucket, object.key, 'object'), r.size);
    return r;
  };
}

function checks(app) {
  return async function s3Checks(ctx, next) {
    let status = 500;
    try {
      const payload = verifySignature(ctx.req);
      const body = ['GET', 'HEAD'].includes(ctx.method) ? Buffer.alloc(0) : await readBody(ctx.req);
      verifyBody(ctx.req, payload, body);
      if (ctx.method === 'POST' && 'delete' in ctx.query && !ctx.get('content-md5')) {
        throw new S3Error('InvalidRequest',
          'Missing required header for this request: Content-MD5');
      }
      if (!['GET', 'HEAD'].includes(ctx.method)) {
        const r = replay(ctx.req, body);
        ctx.req = ctx.request.req = ctx.response.req = r;
      }
      if (ctx.method === 'DELETE' && 'uploadId' in ctx.query) {
        abortUpload(ctx, app.store);
      } else {
        await next();
      }
      status = ctx.status;
    } catch (e) {
      status = e.status || 500;
      throw e;
    } finally {
      if (log !== null) {
        fs.writeSync(log, JSON.stringify({ method: ctx.method, url: ctx.originalUrl, status }) + '\n');
      }
    }
  };
}

async function main() {
  const app = new S3rver({
    address: args.address,
    port: Number(args.port),
    directory: args.directory,
    silent: true,
    vhostBuckets: false,
    configureBuckets: [{ name: args.bucket, configs: [] }],
    key: args.key ? fs.readFileSync(args.key) : undefined,
    cert: args.cert ? fs.readFileSync(args.cert) : undefined,
  });
  settled(app.store);
  app.middleware.unshift(checks(app));
  const { address, port } = await app.run();
  process.stdout.write(`listening ${address}:${port}\n`);
  const stop = () => app.close().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`s3rver_main: ${e.stack || e}\n`);
  process.exit(1);
});
