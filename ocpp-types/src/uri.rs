//! RFC 3986 absolute URIs, for the `uri` format of two OCPP 1.6 fields.

/// Whether `s` is an absolute URI per RFC 3986 section 4.3 (`scheme ":" hier-part ["?" query]`),
/// also allowing a fragment, as JSON Schema's `uri` format does.
pub(crate) fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.bytes();
    if !scheme_chars.next().is_some_and(|b| b.is_ascii_alphabetic())
        || !scheme_chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return false;
    }
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (hier, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let extra_ok = |part: &str| valid_chars(part, b":@/?");
    if !query.is_none_or(extra_ok) || !fragment.is_none_or(extra_ok) {
        return false;
    }
    if let Some(after) = hier.strip_prefix("//") {
        let (authority, path) = match after.find('/') {
            Some(i) => after.split_at(i),
            None => (after, ""),
        };
        valid_authority(authority) && valid_chars(path, b":@/")
    } else {
        valid_chars(hier, b":@/")
    }
}

fn valid_authority(authority: &str) -> bool {
    let host_port = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            if !valid_chars(userinfo, b":") {
                return false;
            }
            hp
        }
        None => authority,
    };
    if let Some(v6) = host_port.strip_prefix('[') {
        let Some((literal, port)) = v6.split_once(']') else {
            return false;
        };
        let literal_ok = literal.parse::<std::net::Ipv6Addr>().is_ok() || is_ipv_future(literal);
        return literal_ok && (port.is_empty() || port.strip_prefix(':').is_some_and(is_port));
    }
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host_port, None),
    };
    valid_chars(host, b"") && port.is_none_or(is_port)
}

/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )` (no percent-encoding).
fn is_ipv_future(literal: &str) -> bool {
    let Some(rest) = literal.strip_prefix(['v', 'V']) else {
        return false;
    };
    let Some((version, address)) = rest.split_once('.') else {
        return false;
    };
    !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_hexdigit())
        && !address.is_empty()
        && !address.contains('%')
        && valid_chars(address, b":")
}

fn is_port(p: &str) -> bool {
    p.bytes().all(|b| b.is_ascii_digit())
}

/// unreserved / pct-encoded / sub-delims / the `extra` characters.
fn valid_chars(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
            continue;
        }
        let ok = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~')
            || matches!(
                c,
                b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
            )
            || extra.contains(&c);
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::is_absolute_uri;

    #[test]
    fn absolute_uris() {
        for ok in [
            "ftp://user:pass@example.com/firmware/v2.bin",
            "https://example.com:8443/a?b=c#d",
            "http://[::1]:80/",
            "urn:isbn:0451450523",
            "mailto:ops@example.com",
            "https://example.com/%20x",
            "http://[v7.fe80::1-en0]/",
            "http://[V1a.x:y]:8/",
        ] {
            assert!(is_absolute_uri(ok), "{ok}");
        }
        for bad in [
            "",
            "example.com/firmware",
            "/relative",
            "1http://x",
            "http://exa mple.com",
            "http://x/%zz",
            "http://[::1/",
            "http://[v]/",
            "http://[vx]/",
            "http://[v1.]/",
            "http://[v1x]/",
            "http://[vg.x]/",
            "http://[v1.%41]/",
        ] {
            assert!(!is_absolute_uri(bad), "{bad}");
        }
    }
}
