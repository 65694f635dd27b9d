// Completes the browser half of a device flow over plain HTTP, as a user
// would in a browser: open /device, enter the user code, confirm, log in on
// the development login page, consent. Usage: approve.mjs BASE USER_CODE LOGIN
const [base, userCode, login] = process.argv.slice(2);
const jar = new Map();

function remember(res) {
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
}
const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

async function go(url, form) {
  const init = { redirect: 'manual', headers: { cookie: cookie() } };
  if (form) {
    init.method = 'POST';
    init.headers['content-type'] = 'application/x-www-form-urlencoded';
    init.body = new URLSearchParams(form).toString();
  }
  const res = await fetch(new URL(url, base), init);
  remember(res);
  const body = await res.text();
  return { res, body, location: res.headers.get('location') };
}

// Follows redirects by hand (GET), keeping cookies.
async function follow(step) {
  let cur = step;
  while (cur.location) cur = await go(cur.location);
  return cur;
}

const field = (html, name) => {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  return m && m[1];
};
const action = (html) => {
  const m = html.match(/<form[^>]*action="([^"]+)"/);
  return m && m[1];
};

let page = await go('/device');
const xsrf = field(page.body, 'xsrf');
page = await go('/device', { xsrf, user_code: userCode });
page = await go('/device', { xsrf: field(page.body, 'xsrf') || xsrf, user_code: userCode, confirm: 'yes' });
page = await follow(page);
// The login page.
page = await follow(await go(action(page.body), { prompt: 'login', login, password: 'any' }));
// The consent page, if asked.
if (page.body.includes('name="prompt" value="consent"') || /consent/i.test(action(page.body) || '')) {
  page = await follow(await go(action(page.body), { prompt: 'consent' }));
}
if (!/success|signed in|sign-in|You can close/i.test(page.body)) {
  console.error(`device approval did not finish: ${page.res.status} ${page.body.slice(0, 400)}`);
  process.exit(1);
}
console.log('approved');
