// The gateway (and the host's routes) behind HTTPS on a domain registered in the mini-program console
// (docs/client.md, step 2). In the developer tools with "do not verify domains" ticked, the
// development gateway works too: 'http://127.0.0.1:3000'.
export const GATEWAY = 'https://api.example.com'
