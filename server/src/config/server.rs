//! `[server]`: where Timebox listens, the address people reach it at, the built site
//! it serves and how long a shutdown waits for requests in flight.

use std::net::SocketAddr;
use std::time::Duration;

use figment::value::Value;

use super::kit::{expect_str, mins, non_empty, parse_list, secs, Keys, Problem};

/// `[server]`: where Timebox listens and how it is reached.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address and port to listen on. Default `127.0.0.1:3000`.
    pub bind: SocketAddr,
    /// The address people use in their browser, without a trailing slash.
    /// Default `http://127.0.0.1:3000`.
    pub public_url: String,
    /// The directory holding the built site (`bash .ci/build-site` output: `pkg/` and
    /// the static assets). Default `target/site`, relative to the working directory.
    pub site_root: String,
    /// How long in-flight requests may run after a shutdown signal. Default 10s.
    pub shutdown_grace: Duration,
    /// Addresses of the reverse proxies in front of Timebox: only from these is
    /// `X-Forwarded-For` believed, to learn the client's address (for the sign-in
    /// limiter and the logs). Default none: the TCP peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl ServerConfig {
    pub(super) fn read(keys: &mut Keys<'_, '_>) -> Self {
        Self {
            bind: keys.value("bind", SocketAddr::from(([127, 0, 0, 1], 3000)), parse_bind),
            public_url: keys.value(
                "public_url",
                "http://127.0.0.1:3000".to_owned(),
                parse_public_url,
            ),
            site_root: keys.value("site_root", "target/site".to_owned(), |v| {
                let empty = Problem::new(
                    "empty",
                    "it names the directory holding the built site (pkg/ and assets)",
                    "set it to the site directory `bash .ci/build-site` writes, such as \
                     \"target/site\", or remove the key for that default",
                );
                non_empty(v, "\"/usr/share/timebox/site\"", empty)
            }),
            shutdown_grace: keys.duration(
                "shutdown_grace",
                secs(10),
                Duration::ZERO..=mins(10),
                "the shutdown grace period",
                "pick how long in-flight requests may take to finish after a shutdown signal, \
                 such as \"10s\"",
            ),
            trusted_proxies: keys.value("trusted_proxies", Vec::new(), parse_proxies),
        }
    }
}

fn parse_bind(value: &Value) -> Result<SocketAddr, Problem> {
    let s = expect_str(value, "\"127.0.0.1:3000\"")?.trim();
    s.parse().map_err(|_| {
        Problem::new(
            "not an address and port",
            "it must be an IP address and a port (host names are not looked up)",
            "use \"127.0.0.1:3000\" (this machine only), \"0.0.0.0:3000\" (all IPv4 \
             interfaces) or \"[::]:3000\" (all interfaces)",
        )
    })
}

fn parse_proxies(value: &Value) -> Result<Vec<std::net::IpAddr>, Problem> {
    let example = "[\"10.0.0.5\", \"10.0.0.6\"]";
    parse_list(value, example)?
        .iter()
        .map(|s| {
            s.trim().parse().map_err(|_| {
                Problem::new(
                    "has an entry that is not an IP address",
                    format!(
                        "{s:?} is not an IPv4 or IPv6 address (ranges and names are not taken)"
                    ),
                    format!("list your reverse proxies' addresses, such as {example}"),
                )
            })
        })
        .collect()
}

fn parse_public_url(value: &Value) -> Result<String, Problem> {
    const FIX: &str = "set it to the address people use to reach Timebox in their browser, \
                       such as \"https://timebox.example.com\"";
    let s = expect_str(value, "\"https://timebox.example.com\"")?.trim();
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return Err(Problem::new(
            "not an http(s) URL",
            "it must start with http:// or https://",
            FIX,
        ));
    };
    if rest.split(['/', '?', '#']).next().unwrap_or("").is_empty() {
        return Err(Problem::new(
            "missing a host",
            "nothing follows the scheme",
            FIX,
        ));
    }
    if s.chars().any(char::is_whitespace) || s.contains(['?', '#']) {
        return Err(Problem::new(
            "not a plain base URL",
            "it must not contain spaces, a query (?…) or a fragment (#…)",
            FIX,
        ));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_contains, from_toml, message};

    #[test]
    fn server_values_are_checked() {
        let m = message(from_toml("[server]\nbind = \"localhost:3000\"\n"));
        assert_contains(
            &m,
            "server.bind = \"localhost:3000\" is not an address and port",
        );
        let m = message(from_toml("[server]\nbind = 3000\n"));
        assert_contains(&m, "server.bind = 3000 is not a string: found a number");

        let m = message(from_toml(
            "[server]\npublic_url = \"timebox.example.com\"\n",
        ));
        assert_contains(&m, "server.public_url = \"timebox.example.com\" is not an http(s) URL: it must start with http:// or https://");
        let m = message(from_toml("[server]\npublic_url = \"https://\"\n"));
        assert_contains(&m, "is missing a host");
    }
}
