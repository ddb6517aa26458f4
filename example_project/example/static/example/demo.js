// The example project's demo page: register a passkey, or sign in with one.
// No globals, no inline script: configuration comes from data- attributes on #passkeys-demo.
(() => {
  "use strict";

  const root = document.getElementById("passkeys-demo");
  if (!root) return;
  const status = document.getElementById("passkeys-status");
  const config = root.dataset;

  const say = (text, isError) => {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  };

  const csrfToken = () => {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : config.csrfToken;
  };

  // POST JSON; resolve with the body, or reject with the server's {code, message}.
  const post = async (url, body) => {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = data.error || {};
      throw Object.assign(new Error(error.message || `HTTP ${response.status}`), {
        code: error.code || `http_${response.status}`,
      });
    }
    return data;
  };

  // Browser-side failures (cancelled prompt, timeout) get a plain message, not a stack.
  const explain = (error) => {
    if (error && error.name === "NotAllowedError") {
      return "The passkey prompt was closed or timed out. Nothing was changed.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This device already holds a passkey for this account.";
    }
    const code = error && error.code ? ` (${error.code})` : "";
    return `${(error && error.message) || "Something went wrong."}${code}`;
  };

  const supported =
    window.PublicKeyCredential &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";
  if (!supported) {
    document.getElementById("passkeys-unsupported").hidden = false;
    return;
  }
  if (config.rpId && location.hostname !== config.rpId) {
    // WebAuthn refuses an RP ID that is not this page's domain: point to the right host.
    document.getElementById("passkeys-wrong-host").hidden = false;
    return;
  }

  const registerForm = document.getElementById("register-form");
  if (registerForm) {
    registerForm.hidden = false;
    registerForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = registerForm.querySelector("button");
      button.disabled = true;
      say("Follow your browser's prompt to create a passkey…");
      try {
        const options = await post(config.registerOptionsUrl);
        const credential = await navigator.credentials.create({
          publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
        });
        const name = registerForm.elements.name.value.trim();
        const body = Object.assign(credential.toJSON(), name ? { name } : {});
        const created = await post(config.registerVerifyUrl, body);
        const item = document.createElement("li");
        const strong = document.createElement("strong");
        strong.textContent = created.name;
        item.append(strong, " ");
        const when = document.createElement("span");
        when.className = "muted";
        when.textContent = "added just now";
        item.append(when);
        const none = document.getElementById("passkey-none");
        if (none) none.remove();
        document.getElementById("passkey-list").append(item);
        registerForm.reset();
        say(`Passkey “${created.name}” added. Sign out and sign back in with it.`);
      } catch (error) {
        say(explain(error), true);
      } finally {
        button.disabled = false;
      }
    });
  }

  const loginButton = document.getElementById("login-button");
  if (loginButton) {
    loginButton.hidden = false;
    loginButton.addEventListener("click", async () => {
      loginButton.disabled = true;
      say("Follow your browser's prompt to use your passkey…");
      try {
        const options = await post(config.loginOptionsUrl, {});
        const credential = await navigator.credentials.get({
          publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
        });
        const result = await post(config.loginVerifyUrl, credential.toJSON());
        say("Signed in. Redirecting…");
        location.assign(result.redirect);
      } catch (error) {
        say(explain(error), true);
        loginButton.disabled = false;
      }
    });
  }
})();
