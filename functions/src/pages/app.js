// Gatehouse's account pages: one script for every page, no dependencies. Tokens live in memory
// only (the refresh token in an HttpOnly cookie with JWT_COOKIE on), never in web storage (which
// holds only the provider and `state` of a provider sign-in under way, see startProvider).
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const readJSON = (id) => {
    try { return JSON.parse($(id).textContent) || {}; } catch (e) { return {}; }
  };
  const cfg = readJSON('page-config');
  const S = Object.assign(readJSON('common-strings'), readJSON('page-strings'));
  const fill = (s, v) => String(s || '').replace(/\{(\w+)\}/g, (m, k) => (k in v ? v[k] : m));
  const statusEl = $('status');
  const errorEl = $('form-error');
  const STEP = ['current_password', 'code', 'recovery_code'];

  // --- the API

  // Token routes (a provider sign-in's among them), and the two that end every session (their
  // answer removes the cookie).
  const COOKIE_ROUTES = /^\/auth\/(jwt\/(create|refresh|blacklist)|mfa\/verify|webauthn\/login|o\/[a-z0-9_-]+|users\/activation|users\/me|sessions)\/$/;
  let access = null;
  let refresh = null; // only without the cookie transport
  let renewing = null;
  let signedOut = () => {};
  class Stop extends Error {} // the session ended mid-flow

  async function call(method, path, body, auth) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (cfg.cookie && COOKIE_ROUTES.test(path)) headers['X-Gatehouse-Cookie'] = '1';
    const used = auth ? access : null;
    if (used) headers.Authorization = 'Bearer ' + used;
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let data = {};
    try { data = JSON.parse(text) || {}; } catch (e) { /* no body, or not JSON */ }
    return { status: r.status, ok: r.ok, data, used };
  }

  // A call; a signed-in one renews an expired access token once and tries again.
  async function api(method, path, body, auth) {
    let res = await call(method, path, body, auth);
    if (auth && res.status === 401) {
      const stale = res.data.code === 'token_not_valid';
      if (stale && (access !== res.used || (await renew()))) res = await call(method, path, body, auth);
      if (res.status === 401) {
        signedOut(S.session_ended);
        throw new Stop();
      }
    }
    return res;
  }

  function keep(d) {
    access = d.access;
    if (d.refresh) refresh = d.refresh;
  }

  // One refresh at a time: the refresh token rotates.
  function renew() {
    renewing = renewing || (async () => {
      if (!cfg.cookie && !refresh) return false;
      try {
        const r = await call('POST', '/auth/jwt/refresh/', cfg.cookie ? {} : { refresh });
        if (r.status === 200 && r.data.access) return keep(r.data), true;
      } catch (e) { /* unreachable: as signed out */ }
      return false;
    })().finally(() => { renewing = null; });
    return renewing;
  }

  // --- messages, field errors, busy buttons

  function say(text, focus) {
    errorEl.textContent = '';
    statusEl.textContent = text;
    if (focus) statusEl.focus();
  }

  const oops = (text) => ((errorEl.textContent = text), errorEl.focus());

  // The message areas go under the heading of the card the user acts in.
  function place(box) {
    if (!box || statusEl.parentNode === box) return;
    const head = box.querySelector('h1, h2');
    if (head && head.parentNode === box) head.after(statusEl, errorEl);
    else box.prepend(statusEl, errorEl);
  }

  function mark(input, text) {
    text ? input.setAttribute('aria-invalid', 'true') : input.removeAttribute('aria-invalid');
    const e = $(input.id + '-error');
    if (e) e.textContent = text;
  }
  const unmark = (input) => mark(input, '');

  function clearErrors(scope) {
    statusEl.textContent = errorEl.textContent = '';
    if (scope) scope.querySelectorAll('[aria-invalid]').forEach(unmark);
  }

  // A field's error goes as soon as it is edited.
  document.addEventListener('input', (e) => {
    if (e.target.getAttribute && e.target.getAttribute('aria-invalid')) unmark(e.target);
  });

  // The visible input of `form` for an API field.
  function fieldFor(form, key) {
    const el = form && form.elements.namedItem(key === 'recovery_code' ? 'code' : key);
    return el && el.id && el.type !== 'hidden' && !el.closest('[hidden]') ? el : null;
  }

  // An error answer: field messages under their inputs, the rest (the API's words, translated
  // already) in #form-error; focus on the first.
  function fail(res, form) {
    const d = res.data;
    const general = [];
    let first = null;
    if (res.status === 400 && d && typeof d === 'object' && !Array.isArray(d) && !d.detail) {
      const keys = Object.keys(d);
      for (const key of keys) {
        const text = [].concat(d[key]).filter((x) => typeof x === 'string').join(' ');
        const input = fieldFor(form, key);
        // (a second factor the form lacks is asked for once the rest is right)
        if (input) mark(input, text), (first = first || input);
        else if (text && !(STEP.includes(key) && keys.some((k) => !STEP.includes(k)))) general.push(text);
      }
    }
    if (!general.length && !first) general.push((d && typeof d.detail === 'string' && d.detail) || S.error);
    errorEl.textContent = general.join(' ');
    (first || errorEl).focus();
  }

  function values(form) {
    const out = {};
    for (const el of form.elements) {
      if (el.name && (el.type === 'hidden' || !el.closest('[hidden]'))) out[el.name] = el.type === 'password' ? el.value : el.value.trim();
    }
    return out;
  }

  // `fn` with `btn` disabled.
  async function run(btn, fn) {
    if (!btn || btn.disabled) return;
    btn.disabled = true;
    btn.classList.add('busy');
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof Stop)) oops(e instanceof TypeError ? S.network : S.error);
    } finally {
      btn.disabled = false;
      btn.classList.remove('busy');
      const a = document.activeElement;
      if ((!a || a === document.body) && btn.isConnected && !btn.closest('[hidden]')) btn.focus();
    }
  }

  // `fn` on a click or a form's submission, messages moved to its card and cleared.
  function on(el, fn) {
    if (!el) return;
    const form = el.tagName === 'FORM' ? el : null;
    el.addEventListener(form ? 'submit' : 'click', (e) => {
      if (form) e.preventDefault();
      run(form ? form.querySelector('button[type=submit]') : el, async () => {
        const box = el.closest('.card');
        place(box);
        clearErrors(box || form);
        await fn(form && values(form), form);
      });
    });
  }

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, v);
    el.append(...kids);
    return el;
  }

  const when = (s) => (s ? new Date(s).toLocaleString(document.documentElement.lang, { dateStyle: 'medium', timeStyle: 'short' }) : '');

  // "Chrome · macOS" out of a user agent, else the user agent itself.
  function device(ua) {
    ua = ua || '';
    const pick = (list) => (list.find(([re]) => re.test(ua)) || [])[1];
    const browser = pick([[/Edg\//, 'Edge'], [/OPR\//, 'Opera'], [/Firefox\//, 'Firefox'], [/Chrom(e|ium)\//, 'Chrome'], [/Safari\//, 'Safari']]);
    const os = pick([[/iPhone/, 'iPhone'], [/iPad/, 'iPad'], [/Android/, 'Android'], [/CrOS/, 'ChromeOS'], [/Windows/, 'Windows'], [/Mac OS X|Macintosh/, 'macOS'], [/Linux/, 'Linux']]);
    return [browser, os].filter(Boolean).join(' · ') || ua.slice(0, 60) || S.unknown_device;
  }

  // --- passkeys: WebAuthn's JSON forms, by hand where the browser lacks them

  const PKC = window.PublicKeyCredential;
  const canPasskey = !!(PKC && navigator.credentials);
  function b64(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }
  const enc = (buf) => b64(new Uint8Array(buf)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const withIds = (list) => (list || []).map((c) => Object.assign({}, c, { id: dec(c.id) }));

  function creationOptions(o) {
    if (PKC.parseCreationOptionsFromJSON) return PKC.parseCreationOptionsFromJSON(o);
    const user = Object.assign({}, o.user, { id: dec(o.user.id) });
    return Object.assign({}, o, { challenge: dec(o.challenge), user, excludeCredentials: withIds(o.excludeCredentials) });
  }

  function requestOptions(o) {
    if (PKC.parseRequestOptionsFromJSON) return PKC.parseRequestOptionsFromJSON(o);
    return Object.assign({}, o, { challenge: dec(o.challenge), allowCredentials: withIds(o.allowCredentials) });
  }

  // toJSON(), or by hand (undefined fields drop out of the JSON).
  function credentialJSON(c) {
    try {
      if (c.toJSON) return c.toJSON();
    } catch (e) { /* by hand */ }
    const r = c.response;
    const b = (k) => (r[k] ? enc(r[k]) : undefined);
    return {
      id: c.id, rawId: enc(c.rawId), type: c.type, authenticatorAttachment: c.authenticatorAttachment || undefined,
      clientExtensionResults: c.getClientExtensionResults(),
      response: {
        clientDataJSON: b('clientDataJSON'), attestationObject: b('attestationObject'), transports: r.getTransports && r.getTransports(),
        authenticatorData: b('authenticatorData'), signature: b('signature'), userHandle: b('userHandle'),
      },
    };
  }

  const getAssertion = async (publicKey) => credentialJSON(await navigator.credentials.get({ publicKey: requestOptions(publicKey) }));
  const createCredential = async (publicKey) => credentialJSON(await navigator.credentials.create({ publicKey: creationOptions(publicKey) }));

  function passkeyError(e) {
    const n = e && e.name;
    if (n === 'NotAllowedError' || n === 'AbortError') return S.passkey_cancelled;
    return n === 'InvalidStateError' ? S.passkey_exists : S.passkey_failed;
  }

  // --- the emailed-link pages, registration and the reset request

  const after = document.querySelector('.after');
  const badLink = (res) => res.status === 400 && (res.data.uid || res.data.token);

  function done(form, text) {
    form.hidden = true;
    if (after) after.hidden = false;
    say(text, true);
  }

  function linkRefused(form, again) {
    form.hidden = true;
    (again || after).hidden = false;
    oops(S.invalid);
  }

  function register() {
    on($('register-form'), async (v, form) => {
      const res = await api('POST', '/auth/users/', v);
      if (res.status !== 201) return fail(res, form);
      document.querySelector('.alt').hidden = true;
      done(form, cfg.activation_email ? fill(S.sent, { email: v.email }) : S.ready);
    });
  }

  function reset() {
    on($('reset-form'), async (v, form) => {
      const res = await api('POST', '/auth/users/reset_password/', v);
      if (!res.ok) return fail(res, form);
      form.hidden = true;
      say(S.sent, true);
    });
  }

  function activate() {
    on($('activate-form'), async (v, form) => {
      const res = await api('POST', '/auth/users/activation/', v);
      const d = res.data;
      if (res.status === 200 && d.access) {
        // Signed in by the link: /account takes the cookie's session; without it, end it.
        if (cfg.cookie) return location.assign('/account'), new Promise(() => {});
        if (d.refresh) call('POST', '/auth/jwt/blacklist/', { refresh: d.refresh }).catch(() => {});
      }
      if (res.ok) return done(form, S.activated);
      if (res.status === 403 && d.code === 'stale_token') return done(form, S.already);
      if (res.status !== 400) return fail(res, form);
      $('resend').hidden = false;
      linkRefused(form);
    });
    on($('resend-form'), async (v, form) => {
      const res = await api('POST', '/auth/users/resend_activation/', v);
      if (!res.ok) return fail(res, form);
      $('resend').hidden = true;
      say(S.resent, true);
    });
  }

  function resetConfirm() {
    on($('reset-confirm-form'), async (v, form) => {
      const res = await api('POST', '/auth/users/reset_password_confirm/', v);
      if (res.ok) return done(form, S.done);
      badLink(res) ? linkRefused(form, document.querySelector('.again')) : fail(res, form);
    });
  }

  function emailConfirm() {
    on($('email-confirm-form'), async (v, form) => {
      const res = await api('POST', '/auth/users/set_email_confirm/', v);
      if (res.ok) return done(form, S.done);
      badLink(res) ? linkRefused(form) : fail(res, form);
    });
  }

  // --- /login and /account

  function app() {
    const views = { login: $('login-view'), mfa: $('mfa-view'), account: $('account-view') };
    const stepForm = $('stepup-form');
    const mfaBox = $('mfa-passkey-box');
    const mfaPasskey = $('mfa-passkey');
    const passkeyList = $('passkey-list');
    const card = (name) => $(name + '-section');
    let me = null;
    let mfa = null; // the mfa_required answer being completed
    let step = null; // the operation waiting for its step-up

    mfaPasskey.remove();
    if (!canPasskey) {
      $('passkey-login-box')?.remove();
      if ($('passkey-form')) $('passkey-form').hidden = !($('passkey-unsupported').hidden = false);
    }

    function show(name) {
      for (const [k, el] of Object.entries(views)) el.hidden = k !== name;
      $('loading')?.remove();
      document.title = S['title_' + name] || document.title;
      document.body.classList.toggle('wide', name === 'account');
    }

    signedOut = (text) => {
      access = refresh = me = mfa = null;
      closeStep();
      views.account.querySelectorAll('form').forEach((f) => f.reset());
      views.account.querySelectorAll('[aria-invalid]').forEach(unmark);
      for (const id of ['sessions-list', 'passkey-list', 'identity-list', 'recovery-codes', 'account-email', 'totp-secret']) if ($(id)) $(id).textContent = '';
      $('recovery-box').hidden = $('totp-setup').hidden = true;
      $('totp-qr').removeAttribute('src');
      $('password').value = '';
      place(views.login);
      clearErrors(views.login);
      show('login');
      history.replaceState(null, '', '/login');
      if (text) say(text, true);
    };

    async function loadMe() {
      const res = await api('GET', '/auth/users/me/', undefined, true);
      if (!res.ok) throw new Error('users/me');
      me = res.data;
      $('account-email').textContent = me.email;
      views.account.querySelectorAll('input.username').forEach((el) => (el.value = me.email));
      $('totp-on').hidden = !me.mfa_enabled;
      $('totp-off').hidden = !!me.mfa_enabled || !$('totp-setup').hidden;
    }

    // Shows the account of the tokens just kept.
    async function enter() {
      await loadMe();
      $('first_name').value = me.first_name || '';
      $('last_name').value = me.last_name || '';
      if ($('passkey-name')) $('passkey-name').value = device(navigator.userAgent);
      show('account');
      history.replaceState(null, '', '/account');
      loadSessions().catch(() => {});
      loadPasskeys().catch(() => {});
      loadIdentities().catch(() => {});
    }

    async function signedIn(data) {
      keep(data);
      mfa = null;
      $('password').value = $('code').value = '';
      await enter();
      $('account-title').focus();
    }

    // Sign-in providers (OpenID Connect, GitHub...): the provider's page, then back to /login
    // with `code` and `state` in the query (or posted, with Apple's form_post: the server puts
    // them in the page config), which this page posts to the API.

    const PROVIDER_KEY = 'gatehouse.provider';
    const providers = cfg.providers || [];
    const labelOf = (name) => (providers.find((p) => p.name === name) || {}).label || name;

    document.querySelectorAll('.provider-login').forEach((btn) => on(btn, async () => {
      const name = btn.dataset.provider;
      const redirect = location.origin + '/login';
      const res = await api('GET', '/auth/o/' + encodeURIComponent(name) + '/?redirect_uri=' + encodeURIComponent(redirect));
      const url = res.ok && typeof res.data.authorization_url === 'string' ? res.data.authorization_url : '';
      if (!/^https?:\/\//i.test(url)) return fail(res, null);
      // The state this tab started: an answer with another one (a code someone else got, a
      // link or a form from another site) is never sent on.
      const state = new URL(url).searchParams.get('state');
      sessionStorage.setItem(PROVIDER_KEY, JSON.stringify({ provider: name, state }));
      location.assign(url);
      // Busy until the page is gone; back from the back-forward cache, the button works again.
      await new Promise((resolve) => window.addEventListener('pageshow', resolve, { once: true }));
    }));

    // The provider's answer, if this page is one: taken out of the address bar at once (the code
    // must not stay in the history), with the sign-in this tab started (spent either way).
    function providerAnswer() {
      if (cfg.page !== 'login') return null;
      const q = new URLSearchParams(location.search);
      const raw = cfg.callback || (q.has('code') || q.has('state') || q.has('error') ? Object.fromEntries(q) : null);
      if (!raw) return null;
      history.replaceState(null, '', '/login');
      let started = null;
      try {
        started = JSON.parse(sessionStorage.getItem(PROVIDER_KEY));
        sessionStorage.removeItem(PROVIDER_KEY);
      } catch (e) { /* no storage: as not started here */ }
      const text = (k) => (typeof raw[k] === 'string' ? raw[k] : '');
      return { started: started && typeof started === 'object' ? started : null, code: text('code'), state: text('state'), user: text('user'), error: text('error') };
    }

    async function finishProvider(b) {
      show('login');
      const s = b.started;
      const ours = !!(s && s.provider && s.state && s.state === b.state);
      if (b.error && s && s.provider) return oops(fill(S.provider_cancelled, { provider: labelOf(s.provider) }));
      if (b.error || !ours || !b.code) return oops(S.provider_stale);
      const btn = $('login-with-' + s.provider);
      const buttons = document.querySelectorAll('.provider-login');
      buttons.forEach((x) => (x.disabled = true));
      if (btn) btn.classList.add('busy');
      say(fill(S.provider_wait, { provider: labelOf(s.provider) }), true);
      try {
        const body = { code: b.code, state: b.state };
        if (b.user) body.user = b.user;
        const res = await api('POST', '/auth/o/' + encodeURIComponent(s.provider) + '/', body);
        const d = res.data;
        clearErrors();
        if (res.ok && d.access) return await signedIn(d);
        if (res.status === 401 && d.code === 'mfa_required') return startMfa(d);
        fail(res, null);
      } catch (e) {
        clearErrors();
        if (!(e instanceof Stop)) oops(e instanceof TypeError ? S.network : S.error);
      } finally {
        buttons.forEach((x) => (x.disabled = false));
        if (btn) btn.classList.remove('busy');
      }
    }

    // Back from a sign-in provider? Else signed in already (the refresh cookie says so)? Else the
    // sign-in form.
    const back = providerAnswer();
    (async () => {
      if (back) return finishProvider(back);
      try {
        if (cfg.cookie && (await renew())) return await enter();
      } catch (e) {
        access = refresh = null;
      }
      show('login');
    })();

    // Signing in

    on($('login-form'), async (v, form) => {
      $('inactive-help').hidden = true;
      const res = await api('POST', '/auth/jwt/create/', { email: v.email, password: v.password });
      const d = res.data;
      if (res.ok && d.access) return signedIn(d);
      if (res.status === 401 && d.code === 'mfa_required') return startMfa(d);
      if (res.status === 403 && d.code === 'account_inactive') $('inactive-help').hidden = false;
      fail(res, form);
    });

    on($('resend-activation'), async () => {
      const res = await api('POST', '/auth/users/resend_activation/', { email: $('email').value.trim() });
      if (!res.ok) return fail(res, $('login-form'));
      $('inactive-help').hidden = true;
      say(S.resent, true);
    });

    async function withPasskey(publicKey, finish) {
      let credential;
      try {
        credential = await getAssertion(publicKey);
      } catch (e) {
        return oops(passkeyError(e));
      }
      await finish(credential);
    }

    on($('passkey-login'), async () => {
      const opts = await api('POST', '/auth/webauthn/login/options/', {});
      if (!opts.ok) return fail(opts, null);
      await withPasskey(opts.data.publicKey, async (credential) => {
        const res = await api('POST', '/auth/webauthn/login/', { login_token: opts.data.login_token, credential });
        res.ok && res.data.access ? await signedIn(res.data) : fail(res, null);
      });
    });

    // The second step

    function startMfa(d) {
      mfa = d;
      const offer = !!(d.webauthn && d.webauthn.publicKey && canPasskey);
      offer ? mfaBox.append(mfaPasskey) : mfaPasskey.remove();
      mfaBox.hidden = !offer;
      $('code').value = '';
      place(views.mfa);
      show('mfa');
      $('code').focus();
    }

    function backToPassword() {
      mfa = null;
      place(views.login);
      clearErrors(views.mfa);
      show('login');
      $('password').value = '';
    }

    async function verify(body, form) {
      const res = await api('POST', '/auth/mfa/verify/', Object.assign({ mfa_token: mfa && mfa.mfa_token }, body));
      if (res.ok && res.data.access) return signedIn(res.data);
      if (res.status === 401) backToPassword(); // expired or used up: from the password again
      fail(res, form);
    }

    // A 6-digit code, else a recovery code (any case, dashes and spaces allowed).
    function factor(text) {
      const c = text.replace(/\s+/g, '');
      return !c || /^\d{6}$/.test(c) ? { code: c } : { recovery_code: text.trim() };
    }

    on($('mfa-form'), (v, form) => verify(factor(v.code), form));
    on(mfaPasskey, () => withPasskey(mfa.webauthn.publicKey, (credential) => verify({ credential }, null)));
    $('mfa-cancel').addEventListener('click', () => {
      backToPassword();
      $('password').focus();
    });

    // Step-up: an operation needing a recent sign-in answers 400 on current_password and/or code:
    // ask in place, send again. o.want: 1 the code too with two-step sign-in on, 2 always.
    async function guarded(o, method, path, body, then) {
      const send = (x) => api(method, path, Object.assign({}, body, x), true);
      const res = await send({});
      if (!askStep(o, send, then, res, {})) await then(res);
    }

    function askStep(o, send, then, res, sent) {
      const d = res.data;
      if (res.status !== 400 || !d || typeof d !== 'object') return false;
      const keys = Object.keys(d);
      const asked = keys.filter((k) => STEP.includes(k) && !fieldFor(o.form, k));
      if (!asked.length || asked.length !== keys.length) return false;
      const has = (k) => asked.includes(k) || k in sent;
      const pw = has('current_password');
      step = { o, send, then };
      $('stepup-password-field').hidden = !pw;
      $('stepup-code-field').hidden = !(has('code') || has('recovery_code') || o.want === 2 || (o.want === 1 && me && me.mfa_enabled));
      // A field sent and refused says why; one not sent is just asked for.
      for (const k of asked) if (k in sent) mark($(k === 'current_password' ? 'stepup-password' : 'stepup-code'), [].concat(d[k]).join(' '));
      o.card.append(stepForm);
      stepForm.hidden = false;
      (stepForm.querySelector('[aria-invalid]') || $(pw ? 'stepup-password' : 'stepup-code')).focus();
      return true;
    }

    function closeStep() {
      step = null;
      stepForm.hidden = true;
      stepForm.reset();
      stepForm.querySelectorAll('[aria-invalid]').forEach(unmark);
    }

    stepForm.addEventListener('submit', (e) => {
      e.preventDefault();
      run($('stepup-submit'), async () => {
        const s = step;
        if (!s) return;
        clearErrors(stepForm);
        const extra = {};
        if (!$('stepup-password-field').hidden) extra.current_password = $('stepup-password').value;
        if (!$('stepup-code-field').hidden) Object.assign(extra, factor($('stepup-code').value));
        const res = await s.send(extra);
        if (askStep(s.o, s.send, s.then, res, extra)) return;
        closeStep();
        await s.then(res);
      });
    });

    $('stepup-cancel').addEventListener('click', () => {
      const s = step;
      closeStep();
      clearErrors();
      if (s) s.o.card.querySelector('h2').focus();
    });

    // The account

    on($('logout'), async () => {
      try {
        await call('POST', '/auth/jwt/blacklist/', cfg.cookie ? {} : { refresh });
      } catch (e) { /* signed out on this page all the same */ }
      signedOut(S.signed_out);
    });

    on($('profile-form'), async (v, form) => {
      const res = await api('PATCH', '/auth/users/me/', { first_name: v.first_name, last_name: v.last_name }, true);
      if (!res.ok) return fail(res, form);
      me = res.data;
      say(S.profile_saved);
    });

    // A form whose operation may need a step-up.
    function sensitive(name, method, path, ok) {
      const form = $(name + '-form');
      on(form, (v) => guarded({ form, card: card(name) }, method, path, v, (res) => (res.ok ? ok(v, form) : fail(res, form))));
    }

    sensitive('password', 'POST', '/auth/users/set_password/', (v, form) => {
      form.querySelectorAll('input[type=password]').forEach((el) => (el.value = ''));
      say(S.password_changed);
      loadSessions().catch(() => {});
    });

    sensitive('email', 'POST', '/auth/users/set_email/', async (v, form) => {
      form.reset();
      if (cfg.email_change_verification) return say(fill(S.email_sent, { email: v.new_email }));
      await loadMe();
      say(fill(S.email_changed, { email: me.email }));
    });

    sensitive('delete', 'DELETE', '/auth/users/me/', () => signedOut(S.deleted));

    // Two-step sign-in

    on($('totp-start'), () => guarded({ card: card('twostep') }, 'POST', '/auth/mfa/totp/', {}, async (res) => {
      if (!res.ok) return fail(res, null);
      $('totp-qr').src = 'data:image/svg+xml;base64,' + b64(new TextEncoder().encode(res.data.qr_svg));
      $('totp-secret').textContent = res.data.secret;
      $('totp-link').href = res.data.otpauth_url;
      $('totp-off').hidden = true;
      $('totp-setup').hidden = false;
      $('totp-code').focus();
    }));

    on($('totp-confirm-form'), async (v, form) => {
      const res = await api('POST', '/auth/mfa/totp/confirm/', { code: v.code.replace(/\s+/g, '') }, true);
      if (!res.ok) return fail(res, form);
      form.reset();
      $('totp-setup').hidden = true;
      $('totp-qr').removeAttribute('src');
      $('totp-secret').textContent = '';
      say(S.totp_on);
      showCodes(res.data.recovery_codes);
      await loadMe();
    });

    $('totp-cancel').addEventListener('click', () => {
      $('totp-confirm-form').reset();
      clearErrors(card('twostep'));
      $('totp-setup').hidden = true;
      $('totp-off').hidden = false;
      $('totp-start').focus();
    });

    const disable = $('totp-disable-form');
    on(disable, (v) => guarded({ form: disable, card: card('twostep') }, 'DELETE', '/auth/mfa/totp/', factor(v.code), async (res) => {
      if (!res.ok) return fail(res, disable);
      disable.reset();
      $('recovery-box').hidden = true;
      await loadMe();
      say(S.totp_off, true);
    }));

    on($('recovery-regenerate'), () => guarded({ card: card('twostep'), want: 2 }, 'POST', '/auth/mfa/recovery_codes/', {}, async (res) => {
      if (!res.ok) return fail(res, null);
      say(S.codes_new);
      showCodes(res.data.recovery_codes);
    }));

    function showCodes(codes) {
      $('recovery-codes').replaceChildren(...(codes || []).map((c) => h('li', null, c)));
      $('recovery-box').hidden = false;
      $('recovery-title').focus();
    }

    const codesText = () => Array.from($('recovery-codes').children, (li) => li.textContent).join('\n') + '\n';

    $('recovery-copy').addEventListener('click', () => {
      if (navigator.clipboard) navigator.clipboard.writeText(codesText()).then(() => say(S.copied), () => {});
    });

    $('recovery-download').addEventListener('click', () => {
      const a = h('a', { href: URL.createObjectURL(new Blob([codesText()], { type: 'text/plain' })), download: 'recovery-codes.txt', hidden: '' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    });

    $('recovery-done').addEventListener('click', () => {
      $('recovery-box').hidden = true;
      $('recovery-codes').textContent = '';
      clearErrors();
      $('twostep-title').focus();
    });

    // Passkeys

    async function loadPasskeys() {
      if (!passkeyList) return;
      const res = await api('GET', '/auth/webauthn/credentials/', undefined, true);
      if (!res.ok || !Array.isArray(res.data)) return;
      closeRename();
      passkeyList.replaceChildren(...res.data.map(passkeyItem));
      $('passkeys-empty').hidden = res.data.length > 0;
    }

    const passkeyURL = (p) => '/auth/webauthn/credentials/' + encodeURIComponent(p.id) + '/';
    const named = (cls, text, name) => h('button', { type: 'button', class: cls }, text, h('span', { class: 'vh' }, ' ' + name));
    const renameForm = $('rename-form');
    let renaming = null; // {p, actions} of the passkey whose rename form is open

    function passkeyItem(p) {
      const used = p.last_used_at ? fill(S.last_used, { date: when(p.last_used_at) }) : S.never_used;
      const rename = named('passkey-rename', S.rename, p.name);
      const remove = named('passkey-remove', S.remove, p.name);
      const actions = h('div', { class: 'item-actions' }, rename, remove);
      const li = h('li', { 'data-credential-id': p.id },
        h('div', { class: 'item-main' }, h('strong', { class: 'item-title' }, p.name), h('span', { class: 'meta' }, fill(S.added, { date: when(p.created_at) }) + ' · ' + used)),
        actions);
      rename.addEventListener('click', () => {
        closeRename();
        renaming = { p, actions };
        actions.hidden = true;
        li.append(renameForm);
        renameForm.hidden = false;
        $('rename-name').value = p.name;
        $('rename-name').focus();
        $('rename-name').select();
      });
      on(remove, () => guarded({ card: card('passkeys'), want: 1 }, 'DELETE', passkeyURL(p), {}, async (res) => {
        if (!res.ok && res.status !== 404) return fail(res, null);
        await loadPasskeys();
        say(S.passkey_removed, true);
        loadMe().catch(() => {});
      }));
      return li;
    }

    // The rename form leaves the list before it is redrawn.
    function closeRename() {
      if (renaming) renaming.actions.hidden = false;
      renaming = null;
      renameForm.hidden = true;
      unmark($('rename-name'));
      card('passkeys').append(renameForm);
    }

    $('rename-cancel').addEventListener('click', () => {
      const actions = renaming && renaming.actions;
      closeRename();
      if (actions) actions.firstChild.focus();
    });

    on(renameForm, async (v) => {
      const { p } = renaming;
      const res = await api('PATCH', passkeyURL(p), { name: v.name }, true);
      if (!res.ok) return fail(res, renameForm);
      await loadPasskeys();
      say(S.passkey_renamed);
      const again = passkeyList.querySelector('[data-credential-id="' + CSS.escape(p.id) + '"] .passkey-rename');
      if (again) again.focus();
    });

    const addForm = $('passkey-form');
    on(addForm, (v) => guarded({ form: addForm, card: card('passkeys'), want: 1 }, 'POST', '/auth/webauthn/register/options/', {}, async (res) => {
      if (!res.ok) return fail(res, addForm);
      let credential;
      try {
        credential = await createCredential(res.data.publicKey);
      } catch (e) {
        return oops(passkeyError(e));
      }
      const made = await api('POST', '/auth/webauthn/register/', { credential, name: v.name }, true);
      if (!made.ok) return fail(made, addForm);
      $('passkey-name').value = device(navigator.userAgent);
      await loadPasskeys();
      say(S.passkey_added);
      loadMe().catch(() => {});
    }));

    // Sign-in providers linked to the account: listed, and removed unless the last way in.

    async function loadIdentities() {
      const list = $('identity-list');
      if (!list) return;
      const res = await api('GET', '/auth/users/me/identities/', undefined, true);
      if (!res.ok || !Array.isArray(res.data)) return;
      list.replaceChildren(...res.data.map(identityItem));
      $('identities-empty').hidden = res.data.length > 0;
    }

    function identityItem(i) {
      const label = i.label || i.provider;
      const facts = [i.email, fill(S.linked_on, { date: when(i.created_at) })];
      if (i.last_used_at) facts.push(fill(S.last_used, { date: when(i.last_used_at) }));
      const remove = named('identity-remove', S.remove, label);
      const li = h('li', { 'data-provider': i.provider },
        h('div', { class: 'item-main' }, h('strong', { class: 'item-title' }, label), h('span', { class: 'meta' }, facts.filter(Boolean).join(' · '))),
        h('div', { class: 'item-actions' }, remove));
      const url = '/auth/users/me/identities/' + encodeURIComponent(i.provider) + '/';
      on(remove, () => guarded({ card: card('identities') }, 'DELETE', url, {}, async (res) => {
        if (!res.ok && res.status !== 404) return fail(res, null);
        await loadIdentities();
        say(fill(S.identity_removed, { provider: label }), true);
      }));
      return li;
    }

    // Sessions

    async function loadSessions() {
      const res = await api('GET', '/auth/sessions/', undefined, true);
      if (!res.ok || !Array.isArray(res.data)) return;
      const order = (a, b) => b.current - a.current || String(b.last_used_at).localeCompare(String(a.last_used_at));
      $('sessions-list').replaceChildren(...res.data.slice().sort(order).map(sessionItem));
    }

    function sessionItem(s) {
      const name = device(s.user_agent);
      const facts = [s.ip, fill(S.signed_in_on, { date: when(s.created_at) }), fill(S.last_active, { date: when(s.last_used_at) })];
      const main = h('div', { class: 'item-main' }, h('strong', { class: 'item-title' }, name));
      if (s.current) main.append(' ', h('span', { class: 'badge' }, S.this_device));
      main.append(h('span', { class: 'meta' }, facts.filter(Boolean).join(' · ')));
      const li = h('li', { 'data-session-id': s.id, class: s.current ? 'current' : null }, main);
      if (s.current) return li;
      const end = named('end-session', S.end_session, name);
      li.append(h('div', { class: 'item-actions' }, end));
      on(end, async () => {
        const res = await api('DELETE', '/auth/sessions/' + encodeURIComponent(s.id) + '/', undefined, true);
        if (!res.ok && res.status !== 404) return fail(res, null);
        li.remove();
        say(S.session_signed_out, true);
      });
      return li;
    }

    on($('logout-everywhere'), async () => {
      const res = await api('DELETE', '/auth/sessions/', undefined, true);
      res.ok ? signedOut(S.signed_out_all) : fail(res, null);
    });
  }

  const pages = { login: app, account: app, register, reset, activate, reset_confirm: resetConfirm, email_confirm: emailConfirm };
  if (pages[cfg.page]) pages[cfg.page]();
})();
