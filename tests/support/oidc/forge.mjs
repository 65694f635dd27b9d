// Re-signs a JWT with a freshly generated RSA key: the claims stay the
// issuer's, the signature is another key's. Usage: forge.mjs JWT same-kid|new-kid
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';

const [jwt, mode] = process.argv.slice(2);
const [h, p] = jwt.split('.');
const header = JSON.parse(Buffer.from(h, 'base64url').toString());
if (mode === 'new-kid') header.kid = randomUUID();
const head = Buffer.from(JSON.stringify(header)).toString('base64url');
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const sig = sign('sha256', Buffer.from(`${head}.${p}`), privateKey).toString('base64url');
process.stdout.write(`${head}.${p}.${sig}\n`);
