#!/usr/bin/env python3
"""
Verifies a vouch access token with PyJWT (Debian's python3-jwt), knowing only
the issuer: its RFC 8414 metadata gives the JWKS, the JWKS the key and its
algorithm. Usage: pyjwt_verify.py ISSUER AUDIENCE, the token on stdin.
Prints the verified claims as JSON, or "rejected: <reason>" and exits 1.
"""
import json
import sys
import urllib.request

import jwt

RFC9068_CLAIMS = ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti']
# Loopback only: never through an HTTP proxy the environment may name.
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch_json(url: str):
    with http.open(url, timeout=5) as res:
        return json.load(res)


def main() -> int:
    issuer, audience = sys.argv[1], sys.argv[2]
    token = sys.stdin.read().strip()
    metadata = fetch_json(issuer.rstrip('/') + '/.well-known/oauth-authorization-server')
    if metadata['issuer'] != issuer:  # RFC 8414 section 3.3
        print(f'rejected: metadata names issuer {metadata["issuer"]!r}')
        return 1
    jwks = fetch_json(metadata['jwks_uri'])
    try:
        header = jwt.get_unverified_header(token)
        if str(header.get('typ', '')).lower() not in ('at+jwt', 'application/at+jwt'):
            raise jwt.InvalidTokenError('typ is not at+jwt (RFC 9068 section 4)')
        # The key named by the token's kid, and the algorithm its JWK declares (never the token's own word).
        kid = header.get('kid')
        jwk = next((k for k in jwks['keys'] if k.get('kid') == kid), None)
        if jwk is None:
            raise jwt.InvalidTokenError(f'no key {kid!r} in the JWKS')
        claims = jwt.decode(
            token, jwt.PyJWK(jwk).key, algorithms=[jwk['alg']], audience=audience, issuer=metadata['issuer'],
            options={'require': RFC9068_CLAIMS},
        )
    except jwt.PyJWTError as err:
        print(f'rejected: {type(err).__name__}: {err}')
        return 1
    print(json.dumps(claims))
    return 0


if __name__ == '__main__':
    sys.exit(main())
