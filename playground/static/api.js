// Talking to the server. An answer that is not 2xx becomes an Error with the server's one-line message
// ({"error": "..."}), which the panel that asked shows.

export async function request(path, body, signal) {
  const options = body === undefined ? { signal } : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  };
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON: keep the status */ }
    throw new Error(message);
  }
  return response;
}

export const getJSON = async (path) => (await request(path)).json();
export const postJSON = async (path, body) => (await request(path, body)).json();
