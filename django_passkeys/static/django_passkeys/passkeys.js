/* django_passkeys: passkey sign-in and management. No globals, no inline script: the page
 * describes itself in <script id="passkeys-config" type="application/json"> and data-pk-*
 * attributes. Without WebAuthn the passkey controls stay hidden and the page still works. */
(() => {
  "use strict";
  const doc = document;
  const each = (sel, fn) => doc.querySelectorAll(sel).forEach(fn);
  const live = doc.querySelector("[data-pk-status]");

  // Status and errors go to the aria-live region.
  const say = (message, error) => {
    if (!live) return;
    const p = doc.createElement("p");
    p.className = "pk-msg " + (error ? "pk-error" : "pk-success");
    p.textContent = message;
    live.replaceChildren(p);
  };

  // "Copy" buttons name the element whose text they copy (data-pk-copy="<id>"); they stay
  // hidden without the Clipboard API, where the text itself is still selectable.
  if (navigator.clipboard) {
    each("[data-pk-copy]", (button) => {
      button.hidden = false;
      button.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(doc.getElementById(button.dataset.pkCopy).innerText.trim());
          say(button.dataset.pkCopied);
        } catch {
          say(button.dataset.pkCopyFailed, true);
        }
      });
    });
  }

  // A waiting page (account recovery) polls its status URL (data-pk-poll): once "ready" it sends
  // its form; when the state it was rendered in (data-pk-state) changes, it reloads. Works
  // without WebAuthn; without JavaScript the form's own button does the same.
  each("form[data-pk-poll]", (f) => {
    const tick = async () => {
      try {
        const res = await fetch(f.dataset.pkPoll, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (res.ok) {
          const s = await res.json();
          if (s.ready) return f.submit();
          if (s.state !== f.dataset.pkState) return location.reload();
        }
      } catch {
        /* offline for a moment: try again */
      }
      setTimeout(tick, 3000);
    };
    setTimeout(tick, 3000);
  });

  const node = doc.getElementById("passkeys-config");
  if (!node) return;
  const cfg = JSON.parse(node.textContent);
  const { urls, messages: text } = cfg;
  const PKC = window.PublicKeyCredential;

  // Server failures carry {reason, message}; browser failures are DOMExceptions named by kind.
  const fail = (e) => say(text[e.reason || e.name] || (e.reason && e.message) || text.error, true);

  if (!PKC || !navigator.credentials) {
    each("[data-pk-unsupported]", (n) => (n.hidden = false));
    return;
  }
  each("[data-pk-supported]", (n) => (n.hidden = false));

  // base64url, only for browsers without the WebAuthn L3 JSON helpers.
  const enc = (buf) =>
    btoa(String.fromCharCode(...new Uint8Array(buf)))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
  const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const ids = (list) => (list || []).map((d) => ({ ...d, id: dec(d.id) }));
  const parse = (kind, o) =>
    kind === "create"
      ? PKC.parseCreationOptionsFromJSON
        ? PKC.parseCreationOptionsFromJSON(o)
        : { ...o, challenge: dec(o.challenge), user: { ...o.user, id: dec(o.user.id) }, excludeCredentials: ids(o.excludeCredentials) }
      : PKC.parseRequestOptionsFromJSON
        ? PKC.parseRequestOptionsFromJSON(o)
        : { ...o, challenge: dec(o.challenge), allowCredentials: ids(o.allowCredentials) };
  const toJSON = (c) => {
    if (c.toJSON) return c.toJSON();
    const r = c.response;
    const response = {};
    for (const k of ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"]) {
      if (r[k]) response[k] = enc(r[k]);
    }
    if (r.getTransports) response.transports = r.getTransports();
    return {
      id: c.id,
      rawId: enc(c.rawId),
      type: c.type,
      authenticatorAttachment: c.authenticatorAttachment,
      clientExtensionResults: c.getClientExtensionResults(),
      response,
    };
  };

  // The Signal API is advisory: absent (Firefox) or failing, nothing else changes.
  const signal = async (name, data) => {
    try {
      if (data && PKC[name]) await PKC[name](data);
    } catch {
      /* ignored */
    }
  };

  const post = async (url, body) => {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": cfg.csrf },
      body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (res.ok) return data;
    throw { reason: data.error?.code || "error", message: data.error?.message };
  };
  // A sensitive action on an old session: confirm with a passkey, then retry it once.
  const call = async (url, body) => {
    try {
      return await post(url, body);
    } catch (e) {
      if (e.reason !== "reauthentication_required" || !urls.reauthOptions) throw e;
      say(text.reauth);
      await ceremony("get", "reauth");
      return post(url, body);
    }
  };

  // One WebAuthn request at a time: a new one aborts the pending one, except that a
  // conditional (autofill) request never displaces a modal one.
  let pending = null;
  const ceremony = async (kind, name, extra = {}, conditional = false, hint = null) => {
    const opts = await call(urls[name + "Options"], hint ? { emailHint: hint } : {});
    if (conditional && pending) throw new DOMException("superseded", "AbortError");
    pending?.abort();
    const ctl = (pending = new AbortController());
    let cred;
    try {
      cred = await navigator.credentials[kind]({
        publicKey: parse(kind, opts),
        signal: ctl.signal,
        ...(conditional && { mediation: "conditional" }),
      });
    } finally {
      if (pending === ctl) pending = null;
    }
    const json = toJSON(cred);
    try {
      return await call(urls[name + "Verify"], { ...json, ...extra });
    } catch (e) {
      if (e.reason === "credential_unknown") {
        signal("signalUnknownCredential", { rpId: opts.rpId, credentialId: json.id });
      }
      throw e;
    }
  };

  // Sign-in: autofill and the button are the same path, told apart by `conditional`.
  const form = doc.querySelector("[data-pk-login]");
  const login = async (conditional) => {
    try {
      if (!conditional) say(text.working);
      const typed = conditional ? "" : form.elements.username?.value.trim() || "";
      const hint = typed.includes("@") ? typed : null;
      const r = await ceremony("get", "login", { next: cfg.next }, conditional, hint);
      say(text.signedIn);
      await signal("signalAllAcceptedCredentials", r.signal);
      location.assign(r.redirect);
    } catch (e) {
      if (e.name === "AbortError") return;
      fail(e);
      // Re-arm autofill with fresh options, unless the browser itself refused it.
      if (!conditional || e.reason) arm();
    }
  };
  // Automatic re-arms in a row; a user's click resets it, so nothing can loop forever.
  let rearms = 0;
  const arm = async () => {
    if (rearms++ > 3) return;
    let ok = false;
    try {
      const caps = PKC.getClientCapabilities ? await PKC.getClientCapabilities() : {};
      ok = "conditionalGet" in caps ? caps.conditionalGet : await PKC.isConditionalMediationAvailable?.();
    } catch {
      /* treated as unavailable */
    }
    if (ok) login(true);
  };
  if (form) {
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      rearms = 0;
      login(false);
    });
    arm();
  }

  // Management page.
  const add = doc.querySelector("[data-pk-add]");
  add?.addEventListener("click", async () => {
    add.disabled = true;
    try {
      say(text.working);
      await ceremony("create", "register");
      say(text.added);
      location.reload();
    } catch (e) {
      if (e.name !== "AbortError") fail(e);
    } finally {
      add.disabled = false;
    }
  });
  each("form[data-pk-action]", (f) =>
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = Object.fromEntries(new FormData(f));
      delete body.csrfmiddlewaretoken;
      const card = f.closest("[data-pk-card]");
      try {
        const r = await call(f.action, body);
        if (f.dataset.pkAction === "remove") {
          card.remove();
          if (!doc.querySelector("[data-pk-card]")) each("[data-pk-empty]", (n) => (n.hidden = false));
          say(text.removed);
          await signal("signalAllAcceptedCredentials", r.signal);
        } else {
          card.querySelectorAll("[data-pk-name]").forEach((n) => (n.textContent = r.name));
          f.closest("details").open = false;
          say(text.renamed);
          await signal("signalCurrentUserDetails", r.signal);
        }
      } catch (e) {
        fail(e);
      }
    }),
  );

  // The upgrade after a password sign-in. Where the browser can create a passkey by itself
  // (conditional create: its password manager, no click), that is tried first; where it cannot,
  // or the request does not settle within cfg.upgradeWait ms, the offer is shown: create one
  // now, not now, don't ask again. Every way out goes on to cfg.next; nothing blocks the user.
  const upgrade = doc.querySelector("[data-pk-upgrade]");
  if (upgrade) {
    const offer = upgrade.querySelector("[data-pk-upgrade-offer]");
    const waiting = upgrade.querySelector("[data-pk-upgrade-wait]");
    const state = (s) => {
      upgrade.dataset.pkUpgrade = s;
      waiting.hidden = s !== "trying";
      offer.hidden = s === "trying";
    };
    const created = (r) => {
      state("done");
      say(text.added);
      location.assign(r.redirect || cfg.next || "/");
    };
    (async () => {
      let caps = {};
      try {
        caps = PKC.getClientCapabilities ? await PKC.getClientCapabilities() : {};
      } catch {
        /* treated as unsupported */
      }
      if (!caps.conditionalCreate) return state("offer");
      state("trying");
      // A conditional create that never settles (no saved password to upgrade, or a browser
      // that keeps it pending) is abandoned for the offer.
      const timer = setTimeout(() => {
        pending?.abort();
        state("offer");
      }, cfg.upgradeWait || 4000);
      try {
        created(await ceremony("create", "upgrade", { next: cfg.next }, true));
      } catch (e) {
        state("offer");
        if (e.name !== "AbortError" && e.name !== "NotAllowedError") fail(e);
      } finally {
        clearTimeout(timer);
      }
    })();
    const create = upgrade.querySelector("[data-pk-upgrade-create]");
    create?.addEventListener("click", async () => {
      create.disabled = true;
      try {
        say(text.working);
        created(await ceremony("create", "upgrade", { next: cfg.next }));
      } catch (e) {
        if (e.name !== "AbortError") fail(e);
      } finally {
        create.disabled = false;
      }
    });
  }

  // The reauthentication page (where @passkey_required sends a request): confirm with a
  // passkey, then go on to the page the user was opening.
  each("[data-pk-reauth-page]", (b) =>
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        say(text.working);
        await ceremony("get", "reauth");
        say(text.confirmed);
        location.assign(cfg.next || "/");
      } catch (e) {
        if (e.name !== "AbortError") fail(e);
      } finally {
        b.disabled = false;
      }
    }),
  );

  // A form marked data-pk-reauth needs a fresh passkey assertion (regenerating recovery codes):
  // confirm with a passkey, then send the form as it is.
  each("form[data-pk-reauth]", (f) =>
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        say(text.reauth);
        await ceremony("get", "reauth");
        f.submit();
      } catch (e) {
        if (e.name !== "AbortError") fail(e);
      }
    }),
  );
})();
