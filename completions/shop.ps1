
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'shop' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'shop'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'shop' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the shop server: every service behind one HTTP gateway, on an embedded SQLite database')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Log in to a shop server and keep the login for later commands')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'End the stored login: revoke its session on the server and forget its tokens')
            [CompletionResult]::new('whoami', 'whoami', [CompletionResultType]::ParameterValue, 'Show who the current login is, on which server, and until when')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the health of every service; exit 3 when the server is unreachable or a service is down')
            [CompletionResult]::new('product', 'product', [CompletionResultType]::ParameterValue, 'Manage the catalog: add, list, change, archive and delete products; import and export (staff)')
            [CompletionResult]::new('inventory', 'inventory', [CompletionResultType]::ParameterValue, 'Watch and change stock per SKU: counts, movements, reservations, reconcile (staff)')
            [CompletionResult]::new('fixtures', 'fixtures', [CompletionResultType]::ParameterValue, 'Load sample users and products from a fixtures file, like `stripe fixtures` (admin)')
            [CompletionResult]::new('user', 'user', [CompletionResultType]::ParameterValue, 'Manage user accounts and roles (admin)')
            [CompletionResult]::new('cart', 'cart', [CompletionResultType]::ParameterValue, 'Fill a shopping cart: add, change and remove lines; your login''s cart, or an anonymous one')
            [CompletionResult]::new('order', 'order', [CompletionResultType]::ParameterValue, 'Place orders (one, or many from NDJSON on stdin) and move them along: pay, ship, deliver, cancel, refund')
            [CompletionResult]::new('return', 'return', [CompletionResultType]::ParameterValue, 'Take back shipped units: open a return, approve or reject it, receive it, refund it')
            [CompletionResult]::new('payment', 'payment', [CompletionResultType]::ParameterValue, 'Look into payments and their refunds; refund, settle bank transfers and see analytics (staff)')
            [CompletionResult]::new('notification', 'notification', [CompletionResultType]::ParameterValue, 'Send and track emails, SMS and push notifications; manage their templates (staff)')
            [CompletionResult]::new('search', 'search', [CompletionResultType]::ParameterValue, 'Search the catalog: ranked, typo-tolerant, with filters; suggestions; analytics')
            [CompletionResult]::new('recommend', 'recommend', [CompletionResultType]::ParameterValue, 'Show products to recommend beside one: bought or viewed together, else the same category')
            [CompletionResult]::new('shipping', 'shipping', [CompletionResultType]::ParameterValue, 'Shipping zones: where the shop ships, by which methods, at what prices (staff)')
            [CompletionResult]::new('address', 'address', [CompletionResultType]::ParameterValue, 'Your address book: saved addresses to ship and bill to')
            [CompletionResult]::new('tax', 'tax', [CompletionResultType]::ParameterValue, 'Tax rates by country, region and tax category (staff)')
            [CompletionResult]::new('discount', 'discount', [CompletionResultType]::ParameterValue, 'Discount codes and automatic promotions: add, list, get, disable (staff)')
            [CompletionResult]::new('customer', 'customer', [CompletionResultType]::ParameterValue, 'Every buyer, registered or guest: orders, net spent, first and last order (staff)')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Reports for the books: sales per day, week or month, as a table or CSV (staff)')
            [CompletionResult]::new('document', 'document', [CompletionResultType]::ParameterValue, 'The templates of invoices and packing slips: show, replace with your own, reset (staff)')
            [CompletionResult]::new('key', 'key', [CompletionResultType]::ParameterValue, 'Make, list and revoke scoped API keys for other systems (staff)')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Who changed what and when: the audit log (admin)')
            [CompletionResult]::new('events', 'events', [CompletionResultType]::ParameterValue, 'Print the event log (a table, or NDJSON when piped), and with --follow stream new events as they happen (staff)')
            [CompletionResult]::new('webhook', 'webhook', [CompletionResultType]::ParameterValue, 'Manage outbound webhook endpoints: add, list, deliveries, replay, test, rotate-secret, remove (staff)')
            [CompletionResult]::new('listen', 'listen', [CompletionResultType]::ParameterValue, 'Forward the server''s live events, signed, to a local URL, like `stripe listen` (staff)')
            [CompletionResult]::new('dashboard', 'dashboard', [CompletionResultType]::ParameterValue, 'Watch the server live in a terminal dashboard: service health, stock, orders and searches (staff)')
            [CompletionResult]::new('db', 'db', [CompletionResultType]::ParameterValue, 'Work on the server''s database file on this machine: online backups')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages for shop and every subcommand into a directory')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;serve' {
            [CompletionResult]::new('--addr', '--addr', [CompletionResultType]::ParameterName, 'Address to listen on (port 0 picks a free port)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'SQLite database file [default: shop/shop.db under the XDG data dir]')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'The database as a URL, which beats --db: postgres://USER@HOST/NAME for PostgreSQL, which several nodes can share, or sqlite:PATH. A password belongs in SHOP_DATABASE_URL, PGPASSWORD or ~/.pgpass, not on a command line')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML config file [default: shop/server.toml under the XDG config dir, if present]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format: `pretty` for a terminal, `json` for collectors')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'Serve HTTPS with this PEM certificate chain (needs --tls-key)')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'The PEM private key for --tls-cert')
            [CompletionResult]::new('--rate-limit-ip', '--rate-limit-ip', [CompletionResultType]::ParameterName, 'Requests per second allowed from one client address (0: no limit)')
            [CompletionResult]::new('--rate-limit-token', '--rate-limit-token', [CompletionResultType]::ParameterName, 'Requests per second allowed with one token (0: no limit)')
            [CompletionResult]::new('--rate-limit-login', '--rate-limit-login', [CompletionResultType]::ParameterName, 'Login attempts per minute allowed from one client address (0: no limit)')
            [CompletionResult]::new('--access-token-ttl', '--access-token-ttl', [CompletionResultType]::ParameterName, 'Lifetime of access tokens')
            [CompletionResult]::new('--session-ttl', '--session-ttl', [CompletionResultType]::ParameterName, 'Lifetime of a login session (its refresh token), extended on each refresh')
            [CompletionResult]::new('--body-limit', '--body-limit', [CompletionResultType]::ParameterName, 'Largest request body accepted')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Longest a request may take before it is answered 504')
            [CompletionResult]::new('--cors-origin', '--cors-origin', [CompletionResultType]::ParameterName, 'Browser origins allowed to call the API (CORS); repeat or separate with commas')
            [CompletionResult]::new('--trusted-proxy', '--trusted-proxy', [CompletionResultType]::ParameterName, 'A proxy (address or CIDR) whose X-Forwarded-For names the client; repeat or separate with commas')
            [CompletionResult]::new('--durability', '--durability', [CompletionResultType]::ParameterName, '`process`: commits survive a crash or kill -9; `power`: also a power cut (an fsync per commit)')
            [CompletionResult]::new('--store-name', '--store-name', [CompletionResultType]::ParameterName, 'The shop''s name on the storefront [default: shop]')
            [CompletionResult]::new('--store-color', '--store-color', [CompletionResultType]::ParameterName, 'The storefront''s brand colour, `#rrggbb`, readable on white [default: #1d4ed8]')
            [CompletionResult]::new('--store-logo', '--store-logo', [CompletionResultType]::ParameterName, 'An SVG or PNG logo shown in the storefront''s header')
            [CompletionResult]::new('--sweep-interval', '--sweep-interval', [CompletionResultType]::ParameterName, 'How often sweepers remove expired sessions and idempotency keys')
            [CompletionResult]::new('--webhook-allow-host', '--webhook-allow-host', [CompletionResultType]::ParameterName, 'A host (`HOST` or `HOST:PORT`) webhook endpoints may use although it resolves to a private or loopback address, also over http://: for local development and tests; repeat or separate with commas')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--demo', '--demo', [CompletionResultType]::ParameterName, 'Load the sample catalog (560 products in 28 categories, with stock, and sample customers) into an empty database; a database with products is left alone')
            [CompletionResult]::new('--no-storefront', '--no-storefront', [CompletionResultType]::ParameterName, 'Serve no storefront at `/`; the API and the status page at `/status` remain')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;login' {
            [CompletionResult]::new('--email', '--email', [CompletionResultType]::ParameterName, 'Account email [default: asked for, offering the profile''s last one]')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the password from the first line of stdin instead of prompting (for scripts)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;logout' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;whoami' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;status' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;product' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a product, and with --stock its stock on hand')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List products, filtered by category, price, text and stock, sorted and paged')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one product, by id (prd_...) or SKU')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change some fields of a product; the others stay as they are')
            [CompletionResult]::new('archive', 'archive', [CompletionResultType]::ParameterValue, 'Archive a product: hidden from the storefront and search, kept for order history')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a product for good; refused while orders or carts refer to it (archive it instead)')
            [CompletionResult]::new('categories', 'categories', [CompletionResultType]::ParameterValue, 'List the category tree with the number of active products in and below each')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Create or update products in bulk from a JSON, NDJSON or CSV file, matched by SKU')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write the catalog as NDJSON, JSON or CSV, in the form `product import` reads back')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;product;add' {
            [CompletionResult]::new('--sku', '--sku', [CompletionResultType]::ParameterName, 'Stock keeping unit: upper-case letters, digits, `.`, `_` and `-`, like CHAIR-01')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The product''s name')
            [CompletionResult]::new('--price', '--price', [CompletionResultType]::ParameterName, 'The price as a decimal in the currency, like 19.99')
            [CompletionResult]::new('--currency', '--currency', [CompletionResultType]::ParameterName, 'ISO 4217 currency of the price')
            [CompletionResult]::new('--category', '--category', [CompletionResultType]::ParameterName, 'Category path, like furniture/chairs')
            [CompletionResult]::new('--stock', '--stock', [CompletionResultType]::ParameterName, 'Units on hand to start with')
            [CompletionResult]::new('--low-stock', '--low-stock', [CompletionResultType]::ParameterName, 'Alert when this many or fewer units are available')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'Longer text for the product page and search')
            [CompletionResult]::new('--attr', '--attr', [CompletionResultType]::ParameterName, 'An attribute, KEY=VALUE (colour=red); repeat for more')
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'An image URL (https://...); repeat for more, in display order')
            [CompletionResult]::new('--weight-grams', '--weight-grams', [CompletionResultType]::ParameterName, 'Shipping weight in grams; per-kg shipping methods need it')
            [CompletionResult]::new('--tax-category', '--tax-category', [CompletionResultType]::ParameterName, 'Tax category for reduced rates, like books (none: the standard rate)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--no-shipping', '--no-shipping', [CompletionResultType]::ParameterName, 'Goods nobody ships (a download, a gift card): orders of only these need no address')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;product;list' {
            [CompletionResult]::new('--category', '--category', [CompletionResultType]::ParameterName, 'Only this category and the categories under it')
            [CompletionResult]::new('--min-price', '--min-price', [CompletionResultType]::ParameterName, 'Only products priced at least this much (a decimal, like 10.00)')
            [CompletionResult]::new('--max-price', '--max-price', [CompletionResultType]::ParameterName, 'Only products priced at most this much (a decimal, like 99.99)')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Only products whose SKU, name or description contains this text')
            [CompletionResult]::new('--search', '--search', [CompletionResultType]::ParameterName, 'Only products whose SKU, name or description contains this text')
            [CompletionResult]::new('--sort', '--sort', [CompletionResultType]::ParameterName, 'Order: price, -price, name, -name, created_at or -created_at (- for descending)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Rows per page')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Rows to skip')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--in-stock', '--in-stock', [CompletionResultType]::ParameterName, 'Only products with stock available')
            [CompletionResult]::new('--archived', '--archived', [CompletionResultType]::ParameterName, 'Only archived products (instead of active ones)')
            [CompletionResult]::new('--all-statuses', '--all-statuses', [CompletionResultType]::ParameterName, 'Active and archived products alike')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every matching row, fetching page after page')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;product;get' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--history', '--history', [CompletionResultType]::ParameterName, 'Show the product''s audit log (who changed what, newest first; admin) instead')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;product;update' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'New name')
            [CompletionResult]::new('--price', '--price', [CompletionResultType]::ParameterName, 'New price as a decimal, like 19.99 (in --currency, else the product''s currency)')
            [CompletionResult]::new('--currency', '--currency', [CompletionResultType]::ParameterName, 'New ISO 4217 currency')
            [CompletionResult]::new('--category', '--category', [CompletionResultType]::ParameterName, 'New category path; an empty one ("") removes the category')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'New description')
            [CompletionResult]::new('--attr', '--attr', [CompletionResultType]::ParameterName, 'Set an attribute, KEY=VALUE, or remove one, KEY=; repeat for more')
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'The new image URLs, replacing all images; repeat for more')
            [CompletionResult]::new('--weight-grams', '--weight-grams', [CompletionResultType]::ParameterName, 'New shipping weight in grams')
            [CompletionResult]::new('--tax-category', '--tax-category', [CompletionResultType]::ParameterName, 'New tax category; an empty one ("") gives the standard rate again')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Apply only if the product is still at this version (else exit 5)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--activate', '--activate', [CompletionResultType]::ParameterName, 'Make an archived product active again')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'shop;product;archive' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;product;delete' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (needed when not on a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (needed when not on a terminal)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;product;categories' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;product;import' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'json, ndjson or csv [default: from the file''s extension]')
            [CompletionResult]::new('--stock', '--stock', [CompletionResultType]::ParameterName, 'What a row''s stock does to a product that exists: ignore it, set the on-hand count to it, or add it to the on-hand count (a delivery)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Check every row and report what would change, changing nothing')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;product;export' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'ndjson, json or csv')
            [CompletionResult]::new('--output-file', '--output-file', [CompletionResultType]::ParameterName, 'Write to this file instead of stdout (replaced only once the export is complete)')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Which products: active, archived or all')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;product;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a product, and with --stock its stock on hand')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List products, filtered by category, price, text and stock, sorted and paged')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one product, by id (prd_...) or SKU')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change some fields of a product; the others stay as they are')
            [CompletionResult]::new('archive', 'archive', [CompletionResultType]::ParameterValue, 'Archive a product: hidden from the storefront and search, kept for order history')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a product for good; refused while orders or carts refer to it (archive it instead)')
            [CompletionResult]::new('categories', 'categories', [CompletionResultType]::ParameterValue, 'List the category tree with the number of active products in and below each')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Create or update products in bulk from a JSON, NDJSON or CSV file, matched by SKU')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write the catalog as NDJSON, JSON or CSV, in the form `product import` reads back')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;product;help;add' {
            break
        }
        'shop;product;help;list' {
            break
        }
        'shop;product;help;get' {
            break
        }
        'shop;product;help;update' {
            break
        }
        'shop;product;help;archive' {
            break
        }
        'shop;product;help;delete' {
            break
        }
        'shop;product;help;categories' {
            break
        }
        'shop;product;help;import' {
            break
        }
        'shop;product;help;export' {
            break
        }
        'shop;product;help;help' {
            break
        }
        'shop;inventory' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List stock per SKU, lowest available first')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a SKU''s stock, and with --history its latest movements')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Set the count on hand (a stocktake)')
            [CompletionResult]::new('adjust', 'adjust', [CompletionResultType]::ParameterValue, 'Add units to or take units from the count on hand')
            [CompletionResult]::new('reservations', 'reservations', [CompletionResultType]::ParameterValue, 'List reservations, newest first, by SKU, status or reference')
            [CompletionResult]::new('reserve', 'reserve', [CompletionResultType]::ParameterValue, 'Hold units of a SKU for a while (a cart, an order); they are not available meanwhile')
            [CompletionResult]::new('release', 'release', [CompletionResultType]::ParameterValue, 'Give a reservation''s units back')
            [CompletionResult]::new('commit', 'commit', [CompletionResultType]::ParameterValue, 'Turn a reservation into a sale: its units leave the count on hand')
            [CompletionResult]::new('low', 'low', [CompletionResultType]::ParameterValue, 'List the SKUs at or below their low-stock threshold (same as list --low)')
            [CompletionResult]::new('reconcile', 'reconcile', [CompletionResultType]::ParameterValue, 'Check that reserved counts match the active reservations and the ledger matches the counts on hand; exit 5 when they drift')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;inventory;list' {
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Only SKUs containing this text')
            [CompletionResult]::new('--search', '--search', [CompletionResultType]::ParameterName, 'Only SKUs containing this text')
            [CompletionResult]::new('--sort', '--sort', [CompletionResultType]::ParameterName, 'Order: available (lowest first) or sku')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Rows per page')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Rows to skip')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--low', '--low', [CompletionResultType]::ParameterName, 'Only SKUs at or below their low-stock threshold')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every matching row, fetching page after page')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;inventory;get' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Movements to show with --history')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--history', '--history', [CompletionResultType]::ParameterName, 'Also list the movements (stocktakes, adjustments, reservations), newest first')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;inventory;set' {
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why: kept in the SKU''s movement ledger')
            [CompletionResult]::new('--low-stock', '--low-stock', [CompletionResultType]::ParameterName, 'Also set the low-stock threshold: alert at this many available or fewer')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;inventory;adjust' {
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why: kept in the SKU''s movement ledger')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;inventory;reservations' {
            [CompletionResult]::new('--sku', '--sku', [CompletionResultType]::ParameterName, 'Only this SKU''s reservations')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only this status: active, committed, released or expired')
            [CompletionResult]::new('--reference', '--reference', [CompletionResultType]::ParameterName, 'Only reservations with exactly this reference')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Rows per page')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Rows to skip')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every matching row, fetching page after page')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;inventory;reserve' {
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'How long the hold lasts unless committed or released: seconds (900) or 30s, 15m, 2h, 1d [default: 15m]')
            [CompletionResult]::new('--reference', '--reference', [CompletionResultType]::ParameterName, 'What the hold is for, e.g. a cart or order id')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;inventory;release' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;inventory;commit' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;inventory;low' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Rows per page')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Rows to skip')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every matching row, fetching page after page')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;inventory;reconcile' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--fix', '--fix', [CompletionResultType]::ParameterName, 'Repair the drift found (the counts are recomputed from the reservations and ledger)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;inventory;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List stock per SKU, lowest available first')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a SKU''s stock, and with --history its latest movements')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Set the count on hand (a stocktake)')
            [CompletionResult]::new('adjust', 'adjust', [CompletionResultType]::ParameterValue, 'Add units to or take units from the count on hand')
            [CompletionResult]::new('reservations', 'reservations', [CompletionResultType]::ParameterValue, 'List reservations, newest first, by SKU, status or reference')
            [CompletionResult]::new('reserve', 'reserve', [CompletionResultType]::ParameterValue, 'Hold units of a SKU for a while (a cart, an order); they are not available meanwhile')
            [CompletionResult]::new('release', 'release', [CompletionResultType]::ParameterValue, 'Give a reservation''s units back')
            [CompletionResult]::new('commit', 'commit', [CompletionResultType]::ParameterValue, 'Turn a reservation into a sale: its units leave the count on hand')
            [CompletionResult]::new('low', 'low', [CompletionResultType]::ParameterValue, 'List the SKUs at or below their low-stock threshold (same as list --low)')
            [CompletionResult]::new('reconcile', 'reconcile', [CompletionResultType]::ParameterValue, 'Check that reserved counts match the active reservations and the ledger matches the counts on hand; exit 5 when they drift')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;inventory;help;list' {
            break
        }
        'shop;inventory;help;get' {
            break
        }
        'shop;inventory;help;set' {
            break
        }
        'shop;inventory;help;adjust' {
            break
        }
        'shop;inventory;help;reservations' {
            break
        }
        'shop;inventory;help;reserve' {
            break
        }
        'shop;inventory;help;release' {
            break
        }
        'shop;inventory;help;commit' {
            break
        }
        'shop;inventory;help;low' {
            break
        }
        'shop;inventory;help;reconcile' {
            break
        }
        'shop;inventory;help;help' {
            break
        }
        'shop;fixtures' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Load users and products (with stock) from a fixtures file; safe to run again')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;fixtures;load' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Report what would be created and updated, changing nothing')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;fixtures;help' {
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Load users and products (with stock) from a fixtures file; safe to run again')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;fixtures;help;load' {
            break
        }
        'shop;fixtures;help;help' {
            break
        }
        'shop;user' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users, newest last; filter by role or by text in the email or name')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one user, by id (usr_...) or email')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a user with any role. The password is prompted for, or read from stdin')
            [CompletionResult]::new('role', 'role', [CompletionResultType]::ParameterValue, 'Change a user''s role (admin, staff or customer). The last admin cannot be demoted')
            [CompletionResult]::new('password', 'password', [CompletionResultType]::ParameterValue, 'Change your own password: the current one, then the new one twice. Your other sessions end; this one stays signed in')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove your email address with the code from the welcome email; orders placed for the address without signing in then join your account')
            [CompletionResult]::new('reset-password', 'reset-password', [CompletionResultType]::ParameterValue, 'A forgotten password: ask for a reset email with --email, then set a new password with the code it brings (--token; it works once, for 30 minutes). Every session of the account ends')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;user;list' {
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'Only users with this role: admin, staff or customer')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Only users whose email or name contains this text (case-insensitive)')
            [CompletionResult]::new('--search', '--search', [CompletionResultType]::ParameterName, 'Only users whose email or name contains this text (case-insensitive)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Users per page')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Users to skip')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every matching user, fetching page after page')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;user;get' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;user;create' {
            [CompletionResult]::new('--email', '--email', [CompletionResultType]::ParameterName, 'The new user''s email, which they log in with')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Display name')
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'admin, staff or customer')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the password from the first line of stdin instead of prompting')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;user;role' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;user;password' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the current password and the new one from the first two lines of stdin')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;user;verify' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;user;reset-password' {
            [CompletionResult]::new('--email', '--email', [CompletionResultType]::ParameterName, 'The account''s email; a reset email goes there if it has an account')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The code from the reset email')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the new password from the first line of stdin instead of prompting')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;user;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users, newest last; filter by role or by text in the email or name')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one user, by id (usr_...) or email')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a user with any role. The password is prompted for, or read from stdin')
            [CompletionResult]::new('role', 'role', [CompletionResultType]::ParameterValue, 'Change a user''s role (admin, staff or customer). The last admin cannot be demoted')
            [CompletionResult]::new('password', 'password', [CompletionResultType]::ParameterValue, 'Change your own password: the current one, then the new one twice. Your other sessions end; this one stays signed in')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove your email address with the code from the welcome email; orders placed for the address without signing in then join your account')
            [CompletionResult]::new('reset-password', 'reset-password', [CompletionResultType]::ParameterValue, 'A forgotten password: ask for a reset email with --email, then set a new password with the code it brings (--token; it works once, for 30 minutes). Every session of the account ends')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;user;help;list' {
            break
        }
        'shop;user;help;get' {
            break
        }
        'shop;user;help;create' {
            break
        }
        'shop;user;help;role' {
            break
        }
        'shop;user;help;password' {
            break
        }
        'shop;user;help;verify' {
            break
        }
        'shop;user;help;reset-password' {
            break
        }
        'shop;user;help;help' {
            break
        }
        'shop;cart' {
            [CompletionResult]::new('--cart-token', '--cart-token', [CompletionResultType]::ParameterName, 'The token of an anonymous cart (printed once when it was made); used when not logged in')
            [CompletionResult]::new('--cart', '--cart', [CompletionResultType]::ParameterName, 'Act on this cart (crt_...) instead of the active one')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show the cart: its lines, subtotal, version and when it expires')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add units of a SKU, to its line if the cart has one; makes the cart on first use')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Set a line''s quantity; 0 removes the line')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a SKU''s line')
            [CompletionResult]::new('clear', 'clear', [CompletionResultType]::ParameterValue, 'Remove every line; the cart itself stays')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;cart;show' {
            [CompletionResult]::new('--cart-token', '--cart-token', [CompletionResultType]::ParameterName, 'The token of an anonymous cart (printed once when it was made); used when not logged in')
            [CompletionResult]::new('--cart', '--cart', [CompletionResultType]::ParameterName, 'Act on this cart (crt_...) instead of the active one')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;cart;add' {
            [CompletionResult]::new('--expected-version', '--expected-version', [CompletionResultType]::ParameterName, 'Apply only if the cart is still at this version (else exit 5)')
            [CompletionResult]::new('--cart-token', '--cart-token', [CompletionResultType]::ParameterName, 'The token of an anonymous cart (printed once when it was made); used when not logged in')
            [CompletionResult]::new('--cart', '--cart', [CompletionResultType]::ParameterName, 'Act on this cart (crt_...) instead of the active one')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;cart;update' {
            [CompletionResult]::new('--expected-version', '--expected-version', [CompletionResultType]::ParameterName, 'Apply only if the cart is still at this version (else exit 5)')
            [CompletionResult]::new('--cart-token', '--cart-token', [CompletionResultType]::ParameterName, 'The token of an anonymous cart (printed once when it was made); used when not logged in')
            [CompletionResult]::new('--cart', '--cart', [CompletionResultType]::ParameterName, 'Act on this cart (crt_...) instead of the active one')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;cart;remove' {
            [CompletionResult]::new('--expected-version', '--expected-version', [CompletionResultType]::ParameterName, 'Apply only if the cart is still at this version (else exit 5)')
            [CompletionResult]::new('--cart-token', '--cart-token', [CompletionResultType]::ParameterName, 'The token of an anonymous cart (printed once when it was made); used when not logged in')
            [CompletionResult]::new('--cart', '--cart', [CompletionResultType]::ParameterName, 'Act on this cart (crt_...) instead of the active one')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;cart;clear' {
            [CompletionResult]::new('--expected-version', '--expected-version', [CompletionResultType]::ParameterName, 'Apply only if the cart is still at this version (else exit 5)')
            [CompletionResult]::new('--cart-token', '--cart-token', [CompletionResultType]::ParameterName, 'The token of an anonymous cart (printed once when it was made); used when not logged in')
            [CompletionResult]::new('--cart', '--cart', [CompletionResultType]::ParameterName, 'Act on this cart (crt_...) instead of the active one')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;cart;help' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show the cart: its lines, subtotal, version and when it expires')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add units of a SKU, to its line if the cart has one; makes the cart on first use')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Set a line''s quantity; 0 removes the line')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a SKU''s line')
            [CompletionResult]::new('clear', 'clear', [CompletionResultType]::ParameterValue, 'Remove every line; the cart itself stays')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;cart;help;show' {
            break
        }
        'shop;cart;help;add' {
            break
        }
        'shop;cart;help;update' {
            break
        }
        'shop;cart;help;remove' {
            break
        }
        'shop;cart;help;clear' {
            break
        }
        'shop;cart;help;help' {
            break
        }
        'shop;order' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Place an order from --item lines or a cart, and with --pay pay it at once; `order create -` places one order per NDJSON line of stdin')
            [CompletionResult]::new('quote', 'quote', [CompletionResultType]::ParameterValue, 'Price an order without placing it: subtotal, discounts, shipping, tax and total, and the shipping methods for the address')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List orders, newest first, by status, payment (financial status), customer and date')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one order with its items and status history')
            [CompletionResult]::new('pay', 'pay', [CompletionResultType]::ParameterValue, 'Pay a pending order (one whose payment was declined, or that was placed without --pay)')
            [CompletionResult]::new('ship', 'ship', [CompletionResultType]::ParameterValue, 'Ship a paid order, all that is left of it or some --item units, or many orders from a CSV file (--from-file) (staff); one refunded in full is refused (exit 5)')
            [CompletionResult]::new('deliver', 'deliver', [CompletionResultType]::ParameterValue, 'Mark a shipped order delivered (staff)')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel a pending order (its stock is released) or a paid one (staff: what is left of its payment is refunded to the customer and its items are restocked)')
            [CompletionResult]::new('refund', 'refund', [CompletionResultType]::ParameterValue, 'Refund an order''s payment, all that is left of it or --amount (staff)')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Orders by status, revenue by day, average order value and best sellers (staff)')
            [CompletionResult]::new('invoice', 'invoice', [CompletionResultType]::ParameterValue, 'Print an order''s invoice (HTML, or --pdf); its number is issued the first time')
            [CompletionResult]::new('packing-slip', 'packing-slip', [CompletionResultType]::ParameterValue, 'Print an order''s packing slip: what is left to pack and where it goes (staff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;order;create' {
            [CompletionResult]::new('--item', '--item', [CompletionResultType]::ParameterName, 'A line of the order, SKU[:QTY] (like CHAIR-01:2; one unit without :QTY); repeat for more')
            [CompletionResult]::new('--cart', '--cart', [CompletionResultType]::ParameterName, 'Check out this cart (crt_..., see `shop cart show -q`) instead of --item lines')
            [CompletionResult]::new('--customer', '--customer', [CompletionResultType]::ParameterName, 'The customer''s email [default: yours]; staff may order for any customer')
            [CompletionResult]::new('--pay', '--pay', [CompletionResultType]::ParameterName, 'Pay at once: card:NUMBER[:MM/YY[:CVC]], apple_pay:TOKEN, google_pay:TOKEN, paypal:TOKEN or bank_transfer')
            [CompletionResult]::new('--ship-to', '--ship-to', [CompletionResultType]::ParameterName, 'The shipping address, a JSON file {name,line1,line2?,city,region?,postal_code,country,phone?}')
            [CompletionResult]::new('--country', '--country', [CompletionResultType]::ParameterName, 'The country shipped to (ISO 3166-1 alpha-2, like DE), with --name, --line1, --city and --postal-code for an order; alone for a quote')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'The region (state, province) shipped to, for regional tax rates')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The recipient, with --country')
            [CompletionResult]::new('--line1', '--line1', [CompletionResultType]::ParameterName, 'The street and number, with --country')
            [CompletionResult]::new('--city', '--city', [CompletionResultType]::ParameterName, 'The city, with --country')
            [CompletionResult]::new('--postal-code', '--postal-code', [CompletionResultType]::ParameterName, 'The postal code, with --country')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'A saved address (adr_..., `shop address list`) to ship to')
            [CompletionResult]::new('--shipping', '--shipping', [CompletionResultType]::ParameterName, 'The shipping method''s code (`shop order quote` lists them for an address)')
            [CompletionResult]::new('--discount', '--discount', [CompletionResultType]::ParameterName, 'A discount code; repeat for more')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'With `-`: orders sent at once (results are still written in input order) [default: 8]')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;quote' {
            [CompletionResult]::new('--item', '--item', [CompletionResultType]::ParameterName, 'A line, SKU[:QTY] (like CHAIR-01:2); repeat for more')
            [CompletionResult]::new('--ship-to', '--ship-to', [CompletionResultType]::ParameterName, 'The shipping address, a JSON file {name,line1,line2?,city,region?,postal_code,country,phone?}')
            [CompletionResult]::new('--country', '--country', [CompletionResultType]::ParameterName, 'The country shipped to (ISO 3166-1 alpha-2, like DE), with --name, --line1, --city and --postal-code for an order; alone for a quote')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'The region (state, province) shipped to, for regional tax rates')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The recipient, with --country')
            [CompletionResult]::new('--line1', '--line1', [CompletionResultType]::ParameterName, 'The street and number, with --country')
            [CompletionResult]::new('--city', '--city', [CompletionResultType]::ParameterName, 'The city, with --country')
            [CompletionResult]::new('--postal-code', '--postal-code', [CompletionResultType]::ParameterName, 'The postal code, with --country')
            [CompletionResult]::new('--address', '--address', [CompletionResultType]::ParameterName, 'A saved address (adr_..., `shop address list`) to ship to')
            [CompletionResult]::new('--shipping', '--shipping', [CompletionResultType]::ParameterName, 'The shipping method''s code (`shop order quote` lists them for an address)')
            [CompletionResult]::new('--discount', '--discount', [CompletionResultType]::ParameterName, 'A discount code; repeat for more')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;list' {
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only this status: pending, paid, shipped, delivered or cancelled')
            [CompletionResult]::new('--financial-status', '--financial-status', [CompletionResultType]::ParameterName, 'Only orders whose money stands so: pending, paid, partially_refunded, refunded or voided')
            [CompletionResult]::new('--customer', '--customer', [CompletionResultType]::ParameterName, 'Only this customer''s orders')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Only orders placed at or after this day (2026-11-01) or time (RFC 3339)')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Only orders placed before this day''s end (2026-11-30) or this time (RFC 3339)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Rows per page')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Rows to skip')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every matching row, fetching page after page')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;get' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;pay' {
            [CompletionResult]::new('--pay', '--pay', [CompletionResultType]::ParameterName, 'How to pay: card:NUMBER[:MM/YY[:CVC]], apple_pay:TOKEN, google_pay:TOKEN, paypal:TOKEN or bank_transfer')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;ship' {
            [CompletionResult]::new('--carrier', '--carrier', [CompletionResultType]::ParameterName, 'The carrier, e.g. ups, fedex, dhl or usps')
            [CompletionResult]::new('--tracking', '--tracking', [CompletionResultType]::ParameterName, 'The carrier''s tracking number (the order''s tracking_number)')
            [CompletionResult]::new('--tracking-url', '--tracking-url', [CompletionResultType]::ParameterName, 'The tracking page, instead of the carrier''s [default: from the carrier]')
            [CompletionResult]::new('--item', '--item', [CompletionResultType]::ParameterName, 'Ship only these units (repeatable) [default: everything left]')
            [CompletionResult]::new('--note', '--note', [CompletionResultType]::ParameterName, 'A note for the order''s history')
            [CompletionResult]::new('--from-file', '--from-file', [CompletionResultType]::ParameterName, 'Ship one order per row of this CSV file (- for stdin)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;deliver' {
            [CompletionResult]::new('--note', '--note', [CompletionResultType]::ParameterName, 'A note for the order''s history')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;cancel' {
            [CompletionResult]::new('--note', '--note', [CompletionResultType]::ParameterName, 'Why, for the order''s history')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before refunding a paid order (needed when not on a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before refunding a paid order (needed when not on a terminal)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;refund' {
            [CompletionResult]::new('--amount', '--amount', [CompletionResultType]::ParameterName, 'How much, as a decimal like 12.50 [default: all that is left]')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why, kept with the refund')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before refunding everything left (needed when not on a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before refunding everything left (needed when not on a terminal)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;analytics' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;invoice' {
            [CompletionResult]::new('--output-file', '--output-file', [CompletionResultType]::ParameterName, 'Write to this file instead of stdout')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--pdf', '--pdf', [CompletionResultType]::ParameterName, 'A PDF instead of HTML from the shop''s template')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;packing-slip' {
            [CompletionResult]::new('--output-file', '--output-file', [CompletionResultType]::ParameterName, 'Write to this file instead of stdout')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--pdf', '--pdf', [CompletionResultType]::ParameterName, 'A PDF instead of HTML from the shop''s template')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;order;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Place an order from --item lines or a cart, and with --pay pay it at once; `order create -` places one order per NDJSON line of stdin')
            [CompletionResult]::new('quote', 'quote', [CompletionResultType]::ParameterValue, 'Price an order without placing it: subtotal, discounts, shipping, tax and total, and the shipping methods for the address')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List orders, newest first, by status, payment (financial status), customer and date')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one order with its items and status history')
            [CompletionResult]::new('pay', 'pay', [CompletionResultType]::ParameterValue, 'Pay a pending order (one whose payment was declined, or that was placed without --pay)')
            [CompletionResult]::new('ship', 'ship', [CompletionResultType]::ParameterValue, 'Ship a paid order, all that is left of it or some --item units, or many orders from a CSV file (--from-file) (staff); one refunded in full is refused (exit 5)')
            [CompletionResult]::new('deliver', 'deliver', [CompletionResultType]::ParameterValue, 'Mark a shipped order delivered (staff)')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel a pending order (its stock is released) or a paid one (staff: what is left of its payment is refunded to the customer and its items are restocked)')
            [CompletionResult]::new('refund', 'refund', [CompletionResultType]::ParameterValue, 'Refund an order''s payment, all that is left of it or --amount (staff)')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Orders by status, revenue by day, average order value and best sellers (staff)')
            [CompletionResult]::new('invoice', 'invoice', [CompletionResultType]::ParameterValue, 'Print an order''s invoice (HTML, or --pdf); its number is issued the first time')
            [CompletionResult]::new('packing-slip', 'packing-slip', [CompletionResultType]::ParameterValue, 'Print an order''s packing slip: what is left to pack and where it goes (staff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;order;help;create' {
            break
        }
        'shop;order;help;quote' {
            break
        }
        'shop;order;help;list' {
            break
        }
        'shop;order;help;get' {
            break
        }
        'shop;order;help;pay' {
            break
        }
        'shop;order;help;ship' {
            break
        }
        'shop;order;help;deliver' {
            break
        }
        'shop;order;help;cancel' {
            break
        }
        'shop;order;help;refund' {
            break
        }
        'shop;order;help;analytics' {
            break
        }
        'shop;order;help;invoice' {
            break
        }
        'shop;order;help;packing-slip' {
            break
        }
        'shop;order;help;help' {
            break
        }
        'shop;return' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Open a return of shipped units of an order, each with a reason')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List returns, newest first: your own, or all for staff')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one return')
            [CompletionResult]::new('approve', 'approve', [CompletionResultType]::ParameterValue, 'Approve a requested return (staff)')
            [CompletionResult]::new('reject', 'reject', [CompletionResultType]::ParameterValue, 'Reject a requested return (staff); its units may be returned again')
            [CompletionResult]::new('receive', 'receive', [CompletionResultType]::ParameterValue, 'Record an approved return as arrived (staff): its units go back on hand')
            [CompletionResult]::new('refund', 'refund', [CompletionResultType]::ParameterValue, 'Refund a received return through its order''s payment (staff): what its items were charged, and with --include-shipping the order''s shipping too')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;return;create' {
            [CompletionResult]::new('--item', '--item', [CompletionResultType]::ParameterName, 'SKU:QTY:REASON (repeatable)')
            [CompletionResult]::new('--note', '--note', [CompletionResultType]::ParameterName, 'A note kept with the return')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;return;list' {
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only this status: requested, approved, rejected, received or refunded')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Rows per page')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Rows to skip')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--open', '--open', [CompletionResultType]::ParameterName, 'Only those still waiting on the shop (requested, approved, received)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every matching row, fetching page after page')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;return;get' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;return;approve' {
            [CompletionResult]::new('--note', '--note', [CompletionResultType]::ParameterName, 'A note kept with the return')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;return;reject' {
            [CompletionResult]::new('--note', '--note', [CompletionResultType]::ParameterName, 'Why, for the customer''s email')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;return;receive' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--no-restock', '--no-restock', [CompletionResultType]::ParameterName, 'Do not restock (damaged goods); the units stay off the shelf')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;return;refund' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--include-shipping', '--include-shipping', [CompletionResultType]::ParameterName, 'Give back the order''s shipping (with its tax) as well; one return of an order at most')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;return;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Open a return of shipped units of an order, each with a reason')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List returns, newest first: your own, or all for staff')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one return')
            [CompletionResult]::new('approve', 'approve', [CompletionResultType]::ParameterValue, 'Approve a requested return (staff)')
            [CompletionResult]::new('reject', 'reject', [CompletionResultType]::ParameterValue, 'Reject a requested return (staff); its units may be returned again')
            [CompletionResult]::new('receive', 'receive', [CompletionResultType]::ParameterValue, 'Record an approved return as arrived (staff): its units go back on hand')
            [CompletionResult]::new('refund', 'refund', [CompletionResultType]::ParameterValue, 'Refund a received return through its order''s payment (staff): what its items were charged, and with --include-shipping the order''s shipping too')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;return;help;create' {
            break
        }
        'shop;return;help;list' {
            break
        }
        'shop;return;help;get' {
            break
        }
        'shop;return;help;approve' {
            break
        }
        'shop;return;help;reject' {
            break
        }
        'shop;return;help;receive' {
            break
        }
        'shop;return;help;refund' {
            break
        }
        'shop;return;help;help' {
            break
        }
        'shop;payment' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List payment attempts, newest first, by status, order and method')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one payment with its refunds')
            [CompletionResult]::new('refund', 'refund', [CompletionResultType]::ParameterValue, 'Refund a payment, all that is left of it or --amount')
            [CompletionResult]::new('settle', 'settle', [CompletionResultType]::ParameterValue, 'Mark a pending bank transfer as received: the payment succeeds and its order is paid')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Attempts, success and refund rates, volume per currency and counts per method')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;payment;list' {
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only this status: processing, pending, succeeded, failed, cancelled or refunded')
            [CompletionResult]::new('--order', '--order', [CompletionResultType]::ParameterName, 'Only the payments of this order, by id (ord_...) or number (ORD-001042)')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'Only this method: card, apple_pay, google_pay, paypal or bank_transfer')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Rows per page')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Rows to skip')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every matching row, fetching page after page')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;payment;get' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;payment;refund' {
            [CompletionResult]::new('--amount', '--amount', [CompletionResultType]::ParameterName, 'How much, as a decimal like 12.50 [default: all that is left]')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why, kept with the refund')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before refunding everything left (needed when not on a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before refunding everything left (needed when not on a terminal)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;payment;settle' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;payment;analytics' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;payment;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List payment attempts, newest first, by status, order and method')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one payment with its refunds')
            [CompletionResult]::new('refund', 'refund', [CompletionResultType]::ParameterValue, 'Refund a payment, all that is left of it or --amount')
            [CompletionResult]::new('settle', 'settle', [CompletionResultType]::ParameterValue, 'Mark a pending bank transfer as received: the payment succeeds and its order is paid')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Attempts, success and refund rates, volume per currency and counts per method')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;payment;help;list' {
            break
        }
        'shop;payment;help;get' {
            break
        }
        'shop;payment;help;refund' {
            break
        }
        'shop;payment;help;settle' {
            break
        }
        'shop;payment;help;analytics' {
            break
        }
        'shop;payment;help;help' {
            break
        }
        'shop;notification' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List notifications, newest first, filtered by status, channel, template, recipient or priority')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one notification: its rendered text and every delivery attempt')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Queue a notification from a template')
            [CompletionResult]::new('resend', 'resend', [CompletionResultType]::ParameterValue, 'Send a failed or dead notification again (a sent one is copied into a new notification)')
            [CompletionResult]::new('templates', 'templates', [CompletionResultType]::ParameterValue, 'List every template: the built-ins and the user-defined ones')
            [CompletionResult]::new('template', 'template', [CompletionResultType]::ParameterValue, 'Add or show a user-defined template')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Counts by channel and template and status, the median time to send, and the queue depth')
            [CompletionResult]::new('deliveries', 'deliveries', [CompletionResultType]::ParameterValue, 'What the local sinks delivered (the channels with no provider configured), newest first')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;notification;list' {
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only this status: queued, sending, sent, failed or dead')
            [CompletionResult]::new('--channel', '--channel', [CompletionResultType]::ParameterName, 'Only this channel: email, sms or push')
            [CompletionResult]::new('--template', '--template', [CompletionResultType]::ParameterName, 'Only notifications from this template')
            [CompletionResult]::new('--recipient', '--recipient', [CompletionResultType]::ParameterName, 'Only notifications to exactly this recipient')
            [CompletionResult]::new('--priority', '--priority', [CompletionResultType]::ParameterName, 'Only this priority: urgent, high, normal or low')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Notifications per page')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Notifications to skip')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;notification;get' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;notification;send' {
            [CompletionResult]::new('--channel', '--channel', [CompletionResultType]::ParameterName, 'The channel: email, sms or push')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'The recipient: an email address, an E.164 phone number (+4915112345678) or a device token')
            [CompletionResult]::new('--template', '--template', [CompletionResultType]::ParameterName, 'The template to render, e.g. welcome or order_confirmation (see `shop notification templates`)')
            [CompletionResult]::new('--var', '--var', [CompletionResultType]::ParameterName, 'A template variable, `key=text` or `key:=JSON`; repeat for more')
            [CompletionResult]::new('--priority', '--priority', [CompletionResultType]::ParameterName, 'Queue order: urgent, high, normal or low [default: normal]')
            [CompletionResult]::new('--at', '--at', [CompletionResultType]::ParameterName, 'Send later: an RFC 3339 time (2026-12-24T09:00:00Z) or a delay (+30m, +2h, +1d)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;notification;resend' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;notification;templates' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;notification;template' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a template, or replace a user-defined one of the same name and channel. It is compiled on save: a syntax error is refused with its line')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a template, one entry per channel it exists for')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;notification;template;add' {
            [CompletionResult]::new('--channel', '--channel', [CompletionResultType]::ParameterName, 'The channel it is for: email, sms or push')
            [CompletionResult]::new('--subject', '--subject', [CompletionResultType]::ParameterName, 'The email subject or push title (not for SMS)')
            [CompletionResult]::new('--body-file', '--body-file', [CompletionResultType]::ParameterName, 'File with the body (the text part of an email); `-` reads stdin')
            [CompletionResult]::new('--html-file', '--html-file', [CompletionResultType]::ParameterName, 'File with the HTML part of an email')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;notification;template;show' {
            [CompletionResult]::new('--channel', '--channel', [CompletionResultType]::ParameterName, 'Only this channel''s version: email, sms or push')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;notification;template;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a template, or replace a user-defined one of the same name and channel. It is compiled on save: a syntax error is refused with its line')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a template, one entry per channel it exists for')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;notification;template;help;add' {
            break
        }
        'shop;notification;template;help;show' {
            break
        }
        'shop;notification;template;help;help' {
            break
        }
        'shop;notification;analytics' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;notification;deliveries' {
            [CompletionResult]::new('--channel', '--channel', [CompletionResultType]::ParameterName, 'Only this channel: email, sms or push')
            [CompletionResult]::new('--recipient', '--recipient', [CompletionResultType]::ParameterName, 'Only deliveries to exactly this recipient')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Deliveries per page')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;notification;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List notifications, newest first, filtered by status, channel, template, recipient or priority')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one notification: its rendered text and every delivery attempt')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Queue a notification from a template')
            [CompletionResult]::new('resend', 'resend', [CompletionResultType]::ParameterValue, 'Send a failed or dead notification again (a sent one is copied into a new notification)')
            [CompletionResult]::new('templates', 'templates', [CompletionResultType]::ParameterValue, 'List every template: the built-ins and the user-defined ones')
            [CompletionResult]::new('template', 'template', [CompletionResultType]::ParameterValue, 'Add or show a user-defined template')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Counts by channel and template and status, the median time to send, and the queue depth')
            [CompletionResult]::new('deliveries', 'deliveries', [CompletionResultType]::ParameterValue, 'What the local sinks delivered (the channels with no provider configured), newest first')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;notification;help;list' {
            break
        }
        'shop;notification;help;get' {
            break
        }
        'shop;notification;help;send' {
            break
        }
        'shop;notification;help;resend' {
            break
        }
        'shop;notification;help;templates' {
            break
        }
        'shop;notification;help;template' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a template, or replace a user-defined one of the same name and channel. It is compiled on save: a syntax error is refused with its line')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a template, one entry per channel it exists for')
            break
        }
        'shop;notification;help;template;add' {
            break
        }
        'shop;notification;help;template;show' {
            break
        }
        'shop;notification;help;analytics' {
            break
        }
        'shop;notification;help;deliveries' {
            break
        }
        'shop;notification;help;help' {
            break
        }
        'shop;search' {
            [CompletionResult]::new('--category', '--category', [CompletionResultType]::ParameterName, 'Only this category and those below it, like furniture or furniture/chairs')
            [CompletionResult]::new('--min-price', '--min-price', [CompletionResultType]::ParameterName, 'Lowest price, a decimal like 19.99')
            [CompletionResult]::new('--max-price', '--max-price', [CompletionResultType]::ParameterName, 'Highest price, a decimal like 19.99')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Results per page')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Results to skip')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--in-stock', '--in-stock', [CompletionResultType]::ParameterName, 'Only products with stock available')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('suggest', 'suggest', [CompletionResultType]::ParameterValue, 'Complete what has been typed, from product names and past searches, most popular first')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Top queries, queries that found nothing, and search volume (staff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;search;suggest' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many suggestions')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;search;analytics' {
            [CompletionResult]::new('--hours', '--hours', [CompletionResultType]::ParameterName, 'The window, in hours back from now')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Entries per list')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;search;help' {
            [CompletionResult]::new('suggest', 'suggest', [CompletionResultType]::ParameterValue, 'Complete what has been typed, from product names and past searches, most popular first')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Top queries, queries that found nothing, and search volume (staff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;search;help;suggest' {
            break
        }
        'shop;search;help;analytics' {
            break
        }
        'shop;search;help;help' {
            break
        }
        'shop;recommend' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many recommendations')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;shipping' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('zone', 'zone', [CompletionResultType]::ParameterValue, 'Shipping zones: countries shipped to alike, each with its methods and prices')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;shipping;zone' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a zone; a country belongs to one zone')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the zones and their methods')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a zone (orders keep the shipping they were sold with)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;shipping;zone;add' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The zone''s name, like EU')
            [CompletionResult]::new('--country', '--country', [CompletionResultType]::ParameterName, 'A country (ISO 3166-1 alpha-2, like DE); repeat for more')
            [CompletionResult]::new('--currency', '--currency', [CompletionResultType]::ParameterName, 'The currency of the methods'' prices; an order in another is not shipped by the zone')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'A method, CODE:KIND:AMOUNT[:THRESHOLD]; repeat for more')
            [CompletionResult]::new('--days', '--days', [CompletionResultType]::ParameterName, 'Days to deliver, told to customers, for every method given')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;shipping;zone;list' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;shipping;zone;remove' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;shipping;zone;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a zone; a country belongs to one zone')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the zones and their methods')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a zone (orders keep the shipping they were sold with)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;shipping;zone;help;add' {
            break
        }
        'shop;shipping;zone;help;list' {
            break
        }
        'shop;shipping;zone;help;remove' {
            break
        }
        'shop;shipping;zone;help;help' {
            break
        }
        'shop;shipping;help' {
            [CompletionResult]::new('zone', 'zone', [CompletionResultType]::ParameterValue, 'Shipping zones: countries shipped to alike, each with its methods and prices')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;shipping;help;zone' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a zone; a country belongs to one zone')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the zones and their methods')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a zone (orders keep the shipping they were sold with)')
            break
        }
        'shop;shipping;help;zone;add' {
            break
        }
        'shop;shipping;help;zone;list' {
            break
        }
        'shop;shipping;help;zone;remove' {
            break
        }
        'shop;shipping;help;help' {
            break
        }
        'shop;address' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the saved addresses, oldest first')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Save an address (at most 20); checked as a checkout checks one')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a saved address (orders that used it keep their copy)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;address;list' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;address;add' {
            [CompletionResult]::new('--from-file', '--from-file', [CompletionResultType]::ParameterName, 'The address as a JSON file {name,line1,line2?,city,region?,postal_code,country,phone?}')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The recipient')
            [CompletionResult]::new('--line1', '--line1', [CompletionResultType]::ParameterName, 'The street and number')
            [CompletionResult]::new('--line2', '--line2', [CompletionResultType]::ParameterName, 'A second address line (flat, floor, c/o)')
            [CompletionResult]::new('--city', '--city', [CompletionResultType]::ParameterName, 'The city or town')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'The state, province or county, like CA')
            [CompletionResult]::new('--postal-code', '--postal-code', [CompletionResultType]::ParameterName, 'The postal or ZIP code')
            [CompletionResult]::new('--country', '--country', [CompletionResultType]::ParameterName, 'ISO 3166-1 alpha-2, like DE')
            [CompletionResult]::new('--phone', '--phone', [CompletionResultType]::ParameterName, 'A phone number for the carrier')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--default-shipping', '--default-shipping', [CompletionResultType]::ParameterName, 'Offer it first for shipping (the previous default loses the flag)')
            [CompletionResult]::new('--default-billing', '--default-billing', [CompletionResultType]::ParameterName, 'Offer it first for billing (the previous default loses the flag)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;address;delete' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;address;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the saved addresses, oldest first')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Save an address (at most 20); checked as a checkout checks one')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a saved address (orders that used it keep their copy)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;address;help;list' {
            break
        }
        'shop;address;help;add' {
            break
        }
        'shop;address;help;delete' {
            break
        }
        'shop;address;help;help' {
            break
        }
        'shop;tax' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('rate', 'rate', [CompletionResultType]::ParameterValue, 'Tax rates by country and region')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;tax;rate' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a rate; one per country, region and tax category')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the rates')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a rate (orders keep the tax they were sold with)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;tax;rate;add' {
            [CompletionResult]::new('--country', '--country', [CompletionResultType]::ParameterName, 'ISO 3166-1 alpha-2, like DE')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'A region of the country (a US state, a province), like CA')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The name on invoices, like ''MwSt 19%''')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'The rate in percent, like 19 or 7.25 (0-100, at most two decimals)')
            [CompletionResult]::new('--category', '--category', [CompletionResultType]::ParameterName, 'Only for products of this tax category, like books')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;tax;rate;list' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;tax;rate;remove' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;tax;rate;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a rate; one per country, region and tax category')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the rates')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a rate (orders keep the tax they were sold with)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;tax;rate;help;add' {
            break
        }
        'shop;tax;rate;help;list' {
            break
        }
        'shop;tax;rate;help;remove' {
            break
        }
        'shop;tax;rate;help;help' {
            break
        }
        'shop;tax;help' {
            [CompletionResult]::new('rate', 'rate', [CompletionResultType]::ParameterValue, 'Tax rates by country and region')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;tax;help;rate' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a rate; one per country, region and tax category')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the rates')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a rate (orders keep the tax they were sold with)')
            break
        }
        'shop;tax;help;rate;add' {
            break
        }
        'shop;tax;help;rate;list' {
            break
        }
        'shop;tax;help;rate;remove' {
            break
        }
        'shop;tax;help;help' {
            break
        }
        'shop;discount' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a discount code, or with --automatic a promotion every order that qualifies gets')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List discounts with how often each was used')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one discount, by id (dsc_...) or code')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Disable a discount: no order gets it any more')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;discount;add' {
            [CompletionResult]::new('--code', '--code', [CompletionResultType]::ParameterName, 'The code customers type (kept upper case); leave out with --automatic')
            [CompletionResult]::new('--percent', '--percent', [CompletionResultType]::ParameterName, 'Percent off the goods, like 10 or 12.5')
            [CompletionResult]::new('--amount', '--amount', [CompletionResultType]::ParameterName, 'An amount off the goods, a decimal in --currency')
            [CompletionResult]::new('--currency', '--currency', [CompletionResultType]::ParameterName, 'The currency of --amount and --min-subtotal')
            [CompletionResult]::new('--min-subtotal', '--min-subtotal', [CompletionResultType]::ParameterName, 'The least the goods must cost, a decimal in --currency (USD when not given)')
            [CompletionResult]::new('--starts', '--starts', [CompletionResultType]::ParameterName, 'Valid from (RFC 3339, or YYYY-MM-DD for midnight UTC)')
            [CompletionResult]::new('--ends', '--ends', [CompletionResultType]::ParameterName, 'Valid until, excluded (RFC 3339, or YYYY-MM-DD for midnight UTC)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Uses in all; a cancelled or fully refunded order gives its use back')
            [CompletionResult]::new('--per-customer', '--per-customer', [CompletionResultType]::ParameterName, 'Uses per customer')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--free-shipping', '--free-shipping', [CompletionResultType]::ParameterName, 'Shipping costs nothing')
            [CompletionResult]::new('--automatic', '--automatic', [CompletionResultType]::ParameterName, 'Applied to every order that meets its conditions, without a code')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;discount;list' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;discount;get' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;discount;disable' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;discount;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a discount code, or with --automatic a promotion every order that qualifies gets')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List discounts with how often each was used')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one discount, by id (dsc_...) or code')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Disable a discount: no order gets it any more')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;discount;help;add' {
            break
        }
        'shop;discount;help;list' {
            break
        }
        'shop;discount;help;get' {
            break
        }
        'shop;discount;help;disable' {
            break
        }
        'shop;discount;help;help' {
            break
        }
        'shop;customer' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List buyers, newest first; search by email or name')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'One buyer by email, with what they spent in each currency')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;customer;list' {
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Only those with this text in their email or name (any case)')
            [CompletionResult]::new('--search', '--search', [CompletionResultType]::ParameterName, 'Only those with this text in their email or name (any case)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many to show')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'How many to skip (for the next page)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;customer;get' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;customer;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List buyers, newest first; search by email or name')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'One buyer by email, with what they spent in each currency')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;customer;help;list' {
            break
        }
        'shop;customer;help;get' {
            break
        }
        'shop;customer;help;help' {
            break
        }
        'shop;report' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('sales', 'sales', [CompletionResultType]::ParameterValue, 'Sales per period and currency; an order counts on the UTC day it was placed, once money was taken for it, net of what was refunded')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;report;sales' {
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'The first day, YYYY-MM-DD (UTC) [default: 29 days before --to]')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'The last day, included, YYYY-MM-DD (UTC) [default: today]')
            [CompletionResult]::new('--group', '--group', [CompletionResultType]::ParameterName, 'One row per day, ISO week or month (and currency)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;report;help' {
            [CompletionResult]::new('sales', 'sales', [CompletionResultType]::ParameterValue, 'Sales per period and currency; an order counts on the UTC day it was placed, once money was taken for it, net of what was refunded')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;report;help;sales' {
            break
        }
        'shop;report;help;help' {
            break
        }
        'shop;document' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('templates', 'templates', [CompletionResultType]::ParameterValue, 'List the document templates, and whether each is the shop''s own or the built-in one')
            [CompletionResult]::new('template', 'template', [CompletionResultType]::ParameterValue, 'Show, replace or reset one document''s template')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;document;templates' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;document;template' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print a template''s HTML (the shop''s own, or the built-in one to start from)')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Replace a template with the shop''s own HTML. It must render a sample order: an unknown variable or a syntax error is refused with its line')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Go back to the built-in template')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;document;template;show' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;document;template;set' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;document;template;reset' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;document;template;help' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print a template''s HTML (the shop''s own, or the built-in one to start from)')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Replace a template with the shop''s own HTML. It must render a sample order: an unknown variable or a syntax error is refused with its line')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Go back to the built-in template')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;document;template;help;show' {
            break
        }
        'shop;document;template;help;set' {
            break
        }
        'shop;document;template;help;reset' {
            break
        }
        'shop;document;template;help;help' {
            break
        }
        'shop;document;help' {
            [CompletionResult]::new('templates', 'templates', [CompletionResultType]::ParameterValue, 'List the document templates, and whether each is the shop''s own or the built-in one')
            [CompletionResult]::new('template', 'template', [CompletionResultType]::ParameterValue, 'Show, replace or reset one document''s template')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;document;help;templates' {
            break
        }
        'shop;document;help;template' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print a template''s HTML (the shop''s own, or the built-in one to start from)')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Replace a template with the shop''s own HTML. It must render a sample order: an unknown variable or a syntax error is refused with its line')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Go back to the built-in template')
            break
        }
        'shop;document;help;template;show' {
            break
        }
        'shop;document;help;template;set' {
            break
        }
        'shop;document;help;template;reset' {
            break
        }
        'shop;document;help;help' {
            break
        }
        'shop;key' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a key; its secret is printed once, so store it at once')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List keys (yours; an admin sees everyone''s). Secrets are never shown')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a key: it stops working at once')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;key;create' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'What the key is for, e.g. the system that will use it')
            [CompletionResult]::new('--scope', '--scope', [CompletionResultType]::ParameterName, 'A scope the key holds; repeat for more')
            [CompletionResult]::new('--expires-in', '--expires-in', [CompletionResultType]::ParameterName, 'The key stops working after this long (like 30d, 12h); never, when absent')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;key;list' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;key;revoke' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;key;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a key; its secret is printed once, so store it at once')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List keys (yours; an admin sees everyone''s). Secrets are never shown')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a key: it stops working at once')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;key;help;create' {
            break
        }
        'shop;key;help;list' {
            break
        }
        'shop;key;help;revoke' {
            break
        }
        'shop;key;help;help' {
            break
        }
        'shop;audit' {
            [CompletionResult]::new('--entity', '--entity', [CompletionResultType]::ParameterName, 'Only changes to this kind of thing: product, stock, order, payment, user, template, key, reservation')
            [CompletionResult]::new('--entity-id', '--entity-id', [CompletionResultType]::ParameterName, 'Only changes to this one (a product''s prd_..., a stock row''s SKU, an order''s ord_...)')
            [CompletionResult]::new('--actor', '--actor', [CompletionResultType]::ParameterName, 'Only changes by this person (email), user or key id, or `system`')
            [CompletionResult]::new('--action', '--action', [CompletionResultType]::ParameterName, 'Only this action (product.updated) or family (product)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only changes made within this long (like 30m, 1h, 7d)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many entries to show')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;events' {
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Only these event types: a name (`order.paid`) or a prefix ending in `*` (`order.*`, `*` for all); repeat or separate with commas')
            [CompletionResult]::new('--type', '--type', [CompletionResultType]::ParameterName, 'Only these event types: a name (`order.paid`) or a prefix ending in `*` (`order.*`, `*` for all); repeat or separate with commas')
            [CompletionResult]::new('--after', '--after', [CompletionResultType]::ParameterName, 'Start after this event id [default: the start of the log]')
            [CompletionResult]::new('--tail', '--tail', [CompletionResultType]::ParameterName, 'Only the last N events of the log (0: none, with --follow only new ones)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'After the log, keep printing new events as they happen (Ctrl-C stops)')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'After the log, keep printing new events as they happen (Ctrl-C stops)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;webhook' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add an endpoint; prints its signing secret (whsec_...), shown only this once')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the endpoints')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one endpoint (without its secret)')
            [CompletionResult]::new('deliveries', 'deliveries', [CompletionResultType]::ParameterValue, 'List an endpoint''s deliveries, newest first: status, attempts, last answer')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Deliver one delivery again (same webhook-id), or with --since every failed or dead delivery created since a time')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Send a webhook.test event to the endpoint (watch it with `shop webhook deliveries`)')
            [CompletionResult]::new('rotate-secret', 'rotate-secret', [CompletionResultType]::ParameterValue, 'Make a new signing secret and print it; the old one keeps signing for the server''s overlap (24 h by default), so receivers can switch without a gap')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove an endpoint and its delivery log')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;webhook;add' {
            [CompletionResult]::new('--event', '--event', [CompletionResultType]::ParameterName, 'An event type (`order.paid`), a prefix (`order.*`) or `*`; repeat for more')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'A note for people: what this endpoint is for')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;webhook;list' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;webhook;get' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;webhook;deliveries' {
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only this status: pending, succeeded, failed or dead')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Deliveries per page')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;webhook;replay' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Every failed or dead delivery created at or after this RFC 3339 time')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;webhook;test' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;webhook;rotate-secret' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;webhook;remove' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (needed when not on a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (needed when not on a terminal)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;webhook;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add an endpoint; prints its signing secret (whsec_...), shown only this once')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the endpoints')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one endpoint (without its secret)')
            [CompletionResult]::new('deliveries', 'deliveries', [CompletionResultType]::ParameterValue, 'List an endpoint''s deliveries, newest first: status, attempts, last answer')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Deliver one delivery again (same webhook-id), or with --since every failed or dead delivery created since a time')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Send a webhook.test event to the endpoint (watch it with `shop webhook deliveries`)')
            [CompletionResult]::new('rotate-secret', 'rotate-secret', [CompletionResultType]::ParameterValue, 'Make a new signing secret and print it; the old one keeps signing for the server''s overlap (24 h by default), so receivers can switch without a gap')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove an endpoint and its delivery log')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;webhook;help;add' {
            break
        }
        'shop;webhook;help;list' {
            break
        }
        'shop;webhook;help;get' {
            break
        }
        'shop;webhook;help;deliveries' {
            break
        }
        'shop;webhook;help;replay' {
            break
        }
        'shop;webhook;help;test' {
            break
        }
        'shop;webhook;help;rotate-secret' {
            break
        }
        'shop;webhook;help;remove' {
            break
        }
        'shop;webhook;help;help' {
            break
        }
        'shop;listen' {
            [CompletionResult]::new('--forward-to', '--forward-to', [CompletionResultType]::ParameterName, 'The local URL to POST each event to')
            [CompletionResult]::new('--event', '--event', [CompletionResultType]::ParameterName, 'Only these event types: exact (`order.paid`), a prefix (`order.*`) or `*`; repeat or separate with commas')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;dashboard' {
            [CompletionResult]::new('--refresh-ms', '--refresh-ms', [CompletionResultType]::ParameterName, 'How often to poll the server''s health and metrics, in milliseconds (events arrive live regardless)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--readonly', '--readonly', [CompletionResultType]::ParameterName, 'Watch only: the keys that ship, cancel, refund or adjust stock are refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;db' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Copy the SQLite database while the server runs: one consistent snapshot, online')
            [CompletionResult]::new('copy', 'copy', [CompletionResultType]::ParameterValue, 'Copy the SQLite database into an empty PostgreSQL database, to move to several nodes')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;db;backup' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database to copy [default: the one `shop serve` uses]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The server''s TOML config file, for its `db` [default: shop/server.toml under the XDG config dir]')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace FILE if it exists')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;db;copy' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'The empty PostgreSQL database to fill: postgres://USER[:PASSWORD]@HOST[:PORT]/NAME')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database to copy [default: the one `shop serve` uses]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The server''s TOML config file, for its `db` [default: shop/server.toml under the XDG config dir]')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;db;help' {
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Copy the SQLite database while the server runs: one consistent snapshot, online')
            [CompletionResult]::new('copy', 'copy', [CompletionResultType]::ParameterValue, 'Copy the SQLite database into an empty PostgreSQL database, to move to several nodes')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;db;help;backup' {
            break
        }
        'shop;db;help;copy' {
            break
        }
        'shop;db;help;help' {
            break
        }
        'shop;completions' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;man' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to talk to [default: the profile''s, else http://127.0.0.1:7467]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Named server and login, for working with more than one server')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Longest wait for one answer from the server')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only ids, one per line (same as -o id)')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colours in tables (also off when NO_COLOR is set or output is piped)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every HTTP request and answer on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'shop;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the shop server: every service behind one HTTP gateway, on an embedded SQLite database')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Log in to a shop server and keep the login for later commands')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'End the stored login: revoke its session on the server and forget its tokens')
            [CompletionResult]::new('whoami', 'whoami', [CompletionResultType]::ParameterValue, 'Show who the current login is, on which server, and until when')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the health of every service; exit 3 when the server is unreachable or a service is down')
            [CompletionResult]::new('product', 'product', [CompletionResultType]::ParameterValue, 'Manage the catalog: add, list, change, archive and delete products; import and export (staff)')
            [CompletionResult]::new('inventory', 'inventory', [CompletionResultType]::ParameterValue, 'Watch and change stock per SKU: counts, movements, reservations, reconcile (staff)')
            [CompletionResult]::new('fixtures', 'fixtures', [CompletionResultType]::ParameterValue, 'Load sample users and products from a fixtures file, like `stripe fixtures` (admin)')
            [CompletionResult]::new('user', 'user', [CompletionResultType]::ParameterValue, 'Manage user accounts and roles (admin)')
            [CompletionResult]::new('cart', 'cart', [CompletionResultType]::ParameterValue, 'Fill a shopping cart: add, change and remove lines; your login''s cart, or an anonymous one')
            [CompletionResult]::new('order', 'order', [CompletionResultType]::ParameterValue, 'Place orders (one, or many from NDJSON on stdin) and move them along: pay, ship, deliver, cancel, refund')
            [CompletionResult]::new('return', 'return', [CompletionResultType]::ParameterValue, 'Take back shipped units: open a return, approve or reject it, receive it, refund it')
            [CompletionResult]::new('payment', 'payment', [CompletionResultType]::ParameterValue, 'Look into payments and their refunds; refund, settle bank transfers and see analytics (staff)')
            [CompletionResult]::new('notification', 'notification', [CompletionResultType]::ParameterValue, 'Send and track emails, SMS and push notifications; manage their templates (staff)')
            [CompletionResult]::new('search', 'search', [CompletionResultType]::ParameterValue, 'Search the catalog: ranked, typo-tolerant, with filters; suggestions; analytics')
            [CompletionResult]::new('recommend', 'recommend', [CompletionResultType]::ParameterValue, 'Show products to recommend beside one: bought or viewed together, else the same category')
            [CompletionResult]::new('shipping', 'shipping', [CompletionResultType]::ParameterValue, 'Shipping zones: where the shop ships, by which methods, at what prices (staff)')
            [CompletionResult]::new('address', 'address', [CompletionResultType]::ParameterValue, 'Your address book: saved addresses to ship and bill to')
            [CompletionResult]::new('tax', 'tax', [CompletionResultType]::ParameterValue, 'Tax rates by country, region and tax category (staff)')
            [CompletionResult]::new('discount', 'discount', [CompletionResultType]::ParameterValue, 'Discount codes and automatic promotions: add, list, get, disable (staff)')
            [CompletionResult]::new('customer', 'customer', [CompletionResultType]::ParameterValue, 'Every buyer, registered or guest: orders, net spent, first and last order (staff)')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Reports for the books: sales per day, week or month, as a table or CSV (staff)')
            [CompletionResult]::new('document', 'document', [CompletionResultType]::ParameterValue, 'The templates of invoices and packing slips: show, replace with your own, reset (staff)')
            [CompletionResult]::new('key', 'key', [CompletionResultType]::ParameterValue, 'Make, list and revoke scoped API keys for other systems (staff)')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Who changed what and when: the audit log (admin)')
            [CompletionResult]::new('events', 'events', [CompletionResultType]::ParameterValue, 'Print the event log (a table, or NDJSON when piped), and with --follow stream new events as they happen (staff)')
            [CompletionResult]::new('webhook', 'webhook', [CompletionResultType]::ParameterValue, 'Manage outbound webhook endpoints: add, list, deliveries, replay, test, rotate-secret, remove (staff)')
            [CompletionResult]::new('listen', 'listen', [CompletionResultType]::ParameterValue, 'Forward the server''s live events, signed, to a local URL, like `stripe listen` (staff)')
            [CompletionResult]::new('dashboard', 'dashboard', [CompletionResultType]::ParameterValue, 'Watch the server live in a terminal dashboard: service health, stock, orders and searches (staff)')
            [CompletionResult]::new('db', 'db', [CompletionResultType]::ParameterValue, 'Work on the server''s database file on this machine: online backups')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages for shop and every subcommand into a directory')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'shop;help;serve' {
            break
        }
        'shop;help;login' {
            break
        }
        'shop;help;logout' {
            break
        }
        'shop;help;whoami' {
            break
        }
        'shop;help;status' {
            break
        }
        'shop;help;product' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a product, and with --stock its stock on hand')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List products, filtered by category, price, text and stock, sorted and paged')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one product, by id (prd_...) or SKU')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change some fields of a product; the others stay as they are')
            [CompletionResult]::new('archive', 'archive', [CompletionResultType]::ParameterValue, 'Archive a product: hidden from the storefront and search, kept for order history')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a product for good; refused while orders or carts refer to it (archive it instead)')
            [CompletionResult]::new('categories', 'categories', [CompletionResultType]::ParameterValue, 'List the category tree with the number of active products in and below each')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Create or update products in bulk from a JSON, NDJSON or CSV file, matched by SKU')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write the catalog as NDJSON, JSON or CSV, in the form `product import` reads back')
            break
        }
        'shop;help;product;add' {
            break
        }
        'shop;help;product;list' {
            break
        }
        'shop;help;product;get' {
            break
        }
        'shop;help;product;update' {
            break
        }
        'shop;help;product;archive' {
            break
        }
        'shop;help;product;delete' {
            break
        }
        'shop;help;product;categories' {
            break
        }
        'shop;help;product;import' {
            break
        }
        'shop;help;product;export' {
            break
        }
        'shop;help;inventory' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List stock per SKU, lowest available first')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a SKU''s stock, and with --history its latest movements')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Set the count on hand (a stocktake)')
            [CompletionResult]::new('adjust', 'adjust', [CompletionResultType]::ParameterValue, 'Add units to or take units from the count on hand')
            [CompletionResult]::new('reservations', 'reservations', [CompletionResultType]::ParameterValue, 'List reservations, newest first, by SKU, status or reference')
            [CompletionResult]::new('reserve', 'reserve', [CompletionResultType]::ParameterValue, 'Hold units of a SKU for a while (a cart, an order); they are not available meanwhile')
            [CompletionResult]::new('release', 'release', [CompletionResultType]::ParameterValue, 'Give a reservation''s units back')
            [CompletionResult]::new('commit', 'commit', [CompletionResultType]::ParameterValue, 'Turn a reservation into a sale: its units leave the count on hand')
            [CompletionResult]::new('low', 'low', [CompletionResultType]::ParameterValue, 'List the SKUs at or below their low-stock threshold (same as list --low)')
            [CompletionResult]::new('reconcile', 'reconcile', [CompletionResultType]::ParameterValue, 'Check that reserved counts match the active reservations and the ledger matches the counts on hand; exit 5 when they drift')
            break
        }
        'shop;help;inventory;list' {
            break
        }
        'shop;help;inventory;get' {
            break
        }
        'shop;help;inventory;set' {
            break
        }
        'shop;help;inventory;adjust' {
            break
        }
        'shop;help;inventory;reservations' {
            break
        }
        'shop;help;inventory;reserve' {
            break
        }
        'shop;help;inventory;release' {
            break
        }
        'shop;help;inventory;commit' {
            break
        }
        'shop;help;inventory;low' {
            break
        }
        'shop;help;inventory;reconcile' {
            break
        }
        'shop;help;fixtures' {
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Load users and products (with stock) from a fixtures file; safe to run again')
            break
        }
        'shop;help;fixtures;load' {
            break
        }
        'shop;help;user' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users, newest last; filter by role or by text in the email or name')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one user, by id (usr_...) or email')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a user with any role. The password is prompted for, or read from stdin')
            [CompletionResult]::new('role', 'role', [CompletionResultType]::ParameterValue, 'Change a user''s role (admin, staff or customer). The last admin cannot be demoted')
            [CompletionResult]::new('password', 'password', [CompletionResultType]::ParameterValue, 'Change your own password: the current one, then the new one twice. Your other sessions end; this one stays signed in')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove your email address with the code from the welcome email; orders placed for the address without signing in then join your account')
            [CompletionResult]::new('reset-password', 'reset-password', [CompletionResultType]::ParameterValue, 'A forgotten password: ask for a reset email with --email, then set a new password with the code it brings (--token; it works once, for 30 minutes). Every session of the account ends')
            break
        }
        'shop;help;user;list' {
            break
        }
        'shop;help;user;get' {
            break
        }
        'shop;help;user;create' {
            break
        }
        'shop;help;user;role' {
            break
        }
        'shop;help;user;password' {
            break
        }
        'shop;help;user;verify' {
            break
        }
        'shop;help;user;reset-password' {
            break
        }
        'shop;help;cart' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show the cart: its lines, subtotal, version and when it expires')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add units of a SKU, to its line if the cart has one; makes the cart on first use')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Set a line''s quantity; 0 removes the line')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a SKU''s line')
            [CompletionResult]::new('clear', 'clear', [CompletionResultType]::ParameterValue, 'Remove every line; the cart itself stays')
            break
        }
        'shop;help;cart;show' {
            break
        }
        'shop;help;cart;add' {
            break
        }
        'shop;help;cart;update' {
            break
        }
        'shop;help;cart;remove' {
            break
        }
        'shop;help;cart;clear' {
            break
        }
        'shop;help;order' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Place an order from --item lines or a cart, and with --pay pay it at once; `order create -` places one order per NDJSON line of stdin')
            [CompletionResult]::new('quote', 'quote', [CompletionResultType]::ParameterValue, 'Price an order without placing it: subtotal, discounts, shipping, tax and total, and the shipping methods for the address')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List orders, newest first, by status, payment (financial status), customer and date')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one order with its items and status history')
            [CompletionResult]::new('pay', 'pay', [CompletionResultType]::ParameterValue, 'Pay a pending order (one whose payment was declined, or that was placed without --pay)')
            [CompletionResult]::new('ship', 'ship', [CompletionResultType]::ParameterValue, 'Ship a paid order, all that is left of it or some --item units, or many orders from a CSV file (--from-file) (staff); one refunded in full is refused (exit 5)')
            [CompletionResult]::new('deliver', 'deliver', [CompletionResultType]::ParameterValue, 'Mark a shipped order delivered (staff)')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel a pending order (its stock is released) or a paid one (staff: what is left of its payment is refunded to the customer and its items are restocked)')
            [CompletionResult]::new('refund', 'refund', [CompletionResultType]::ParameterValue, 'Refund an order''s payment, all that is left of it or --amount (staff)')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Orders by status, revenue by day, average order value and best sellers (staff)')
            [CompletionResult]::new('invoice', 'invoice', [CompletionResultType]::ParameterValue, 'Print an order''s invoice (HTML, or --pdf); its number is issued the first time')
            [CompletionResult]::new('packing-slip', 'packing-slip', [CompletionResultType]::ParameterValue, 'Print an order''s packing slip: what is left to pack and where it goes (staff)')
            break
        }
        'shop;help;order;create' {
            break
        }
        'shop;help;order;quote' {
            break
        }
        'shop;help;order;list' {
            break
        }
        'shop;help;order;get' {
            break
        }
        'shop;help;order;pay' {
            break
        }
        'shop;help;order;ship' {
            break
        }
        'shop;help;order;deliver' {
            break
        }
        'shop;help;order;cancel' {
            break
        }
        'shop;help;order;refund' {
            break
        }
        'shop;help;order;analytics' {
            break
        }
        'shop;help;order;invoice' {
            break
        }
        'shop;help;order;packing-slip' {
            break
        }
        'shop;help;return' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Open a return of shipped units of an order, each with a reason')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List returns, newest first: your own, or all for staff')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one return')
            [CompletionResult]::new('approve', 'approve', [CompletionResultType]::ParameterValue, 'Approve a requested return (staff)')
            [CompletionResult]::new('reject', 'reject', [CompletionResultType]::ParameterValue, 'Reject a requested return (staff); its units may be returned again')
            [CompletionResult]::new('receive', 'receive', [CompletionResultType]::ParameterValue, 'Record an approved return as arrived (staff): its units go back on hand')
            [CompletionResult]::new('refund', 'refund', [CompletionResultType]::ParameterValue, 'Refund a received return through its order''s payment (staff): what its items were charged, and with --include-shipping the order''s shipping too')
            break
        }
        'shop;help;return;create' {
            break
        }
        'shop;help;return;list' {
            break
        }
        'shop;help;return;get' {
            break
        }
        'shop;help;return;approve' {
            break
        }
        'shop;help;return;reject' {
            break
        }
        'shop;help;return;receive' {
            break
        }
        'shop;help;return;refund' {
            break
        }
        'shop;help;payment' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List payment attempts, newest first, by status, order and method')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one payment with its refunds')
            [CompletionResult]::new('refund', 'refund', [CompletionResultType]::ParameterValue, 'Refund a payment, all that is left of it or --amount')
            [CompletionResult]::new('settle', 'settle', [CompletionResultType]::ParameterValue, 'Mark a pending bank transfer as received: the payment succeeds and its order is paid')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Attempts, success and refund rates, volume per currency and counts per method')
            break
        }
        'shop;help;payment;list' {
            break
        }
        'shop;help;payment;get' {
            break
        }
        'shop;help;payment;refund' {
            break
        }
        'shop;help;payment;settle' {
            break
        }
        'shop;help;payment;analytics' {
            break
        }
        'shop;help;notification' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List notifications, newest first, filtered by status, channel, template, recipient or priority')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one notification: its rendered text and every delivery attempt')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Queue a notification from a template')
            [CompletionResult]::new('resend', 'resend', [CompletionResultType]::ParameterValue, 'Send a failed or dead notification again (a sent one is copied into a new notification)')
            [CompletionResult]::new('templates', 'templates', [CompletionResultType]::ParameterValue, 'List every template: the built-ins and the user-defined ones')
            [CompletionResult]::new('template', 'template', [CompletionResultType]::ParameterValue, 'Add or show a user-defined template')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Counts by channel and template and status, the median time to send, and the queue depth')
            [CompletionResult]::new('deliveries', 'deliveries', [CompletionResultType]::ParameterValue, 'What the local sinks delivered (the channels with no provider configured), newest first')
            break
        }
        'shop;help;notification;list' {
            break
        }
        'shop;help;notification;get' {
            break
        }
        'shop;help;notification;send' {
            break
        }
        'shop;help;notification;resend' {
            break
        }
        'shop;help;notification;templates' {
            break
        }
        'shop;help;notification;template' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a template, or replace a user-defined one of the same name and channel. It is compiled on save: a syntax error is refused with its line')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a template, one entry per channel it exists for')
            break
        }
        'shop;help;notification;template;add' {
            break
        }
        'shop;help;notification;template;show' {
            break
        }
        'shop;help;notification;analytics' {
            break
        }
        'shop;help;notification;deliveries' {
            break
        }
        'shop;help;search' {
            [CompletionResult]::new('suggest', 'suggest', [CompletionResultType]::ParameterValue, 'Complete what has been typed, from product names and past searches, most popular first')
            [CompletionResult]::new('analytics', 'analytics', [CompletionResultType]::ParameterValue, 'Top queries, queries that found nothing, and search volume (staff)')
            break
        }
        'shop;help;search;suggest' {
            break
        }
        'shop;help;search;analytics' {
            break
        }
        'shop;help;recommend' {
            break
        }
        'shop;help;shipping' {
            [CompletionResult]::new('zone', 'zone', [CompletionResultType]::ParameterValue, 'Shipping zones: countries shipped to alike, each with its methods and prices')
            break
        }
        'shop;help;shipping;zone' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a zone; a country belongs to one zone')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the zones and their methods')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a zone (orders keep the shipping they were sold with)')
            break
        }
        'shop;help;shipping;zone;add' {
            break
        }
        'shop;help;shipping;zone;list' {
            break
        }
        'shop;help;shipping;zone;remove' {
            break
        }
        'shop;help;address' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the saved addresses, oldest first')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Save an address (at most 20); checked as a checkout checks one')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a saved address (orders that used it keep their copy)')
            break
        }
        'shop;help;address;list' {
            break
        }
        'shop;help;address;add' {
            break
        }
        'shop;help;address;delete' {
            break
        }
        'shop;help;tax' {
            [CompletionResult]::new('rate', 'rate', [CompletionResultType]::ParameterValue, 'Tax rates by country and region')
            break
        }
        'shop;help;tax;rate' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a rate; one per country, region and tax category')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the rates')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a rate (orders keep the tax they were sold with)')
            break
        }
        'shop;help;tax;rate;add' {
            break
        }
        'shop;help;tax;rate;list' {
            break
        }
        'shop;help;tax;rate;remove' {
            break
        }
        'shop;help;discount' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a discount code, or with --automatic a promotion every order that qualifies gets')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List discounts with how often each was used')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one discount, by id (dsc_...) or code')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Disable a discount: no order gets it any more')
            break
        }
        'shop;help;discount;add' {
            break
        }
        'shop;help;discount;list' {
            break
        }
        'shop;help;discount;get' {
            break
        }
        'shop;help;discount;disable' {
            break
        }
        'shop;help;customer' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List buyers, newest first; search by email or name')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'One buyer by email, with what they spent in each currency')
            break
        }
        'shop;help;customer;list' {
            break
        }
        'shop;help;customer;get' {
            break
        }
        'shop;help;report' {
            [CompletionResult]::new('sales', 'sales', [CompletionResultType]::ParameterValue, 'Sales per period and currency; an order counts on the UTC day it was placed, once money was taken for it, net of what was refunded')
            break
        }
        'shop;help;report;sales' {
            break
        }
        'shop;help;document' {
            [CompletionResult]::new('templates', 'templates', [CompletionResultType]::ParameterValue, 'List the document templates, and whether each is the shop''s own or the built-in one')
            [CompletionResult]::new('template', 'template', [CompletionResultType]::ParameterValue, 'Show, replace or reset one document''s template')
            break
        }
        'shop;help;document;templates' {
            break
        }
        'shop;help;document;template' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print a template''s HTML (the shop''s own, or the built-in one to start from)')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Replace a template with the shop''s own HTML. It must render a sample order: an unknown variable or a syntax error is refused with its line')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Go back to the built-in template')
            break
        }
        'shop;help;document;template;show' {
            break
        }
        'shop;help;document;template;set' {
            break
        }
        'shop;help;document;template;reset' {
            break
        }
        'shop;help;key' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a key; its secret is printed once, so store it at once')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List keys (yours; an admin sees everyone''s). Secrets are never shown')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a key: it stops working at once')
            break
        }
        'shop;help;key;create' {
            break
        }
        'shop;help;key;list' {
            break
        }
        'shop;help;key;revoke' {
            break
        }
        'shop;help;audit' {
            break
        }
        'shop;help;events' {
            break
        }
        'shop;help;webhook' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add an endpoint; prints its signing secret (whsec_...), shown only this once')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the endpoints')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one endpoint (without its secret)')
            [CompletionResult]::new('deliveries', 'deliveries', [CompletionResultType]::ParameterValue, 'List an endpoint''s deliveries, newest first: status, attempts, last answer')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Deliver one delivery again (same webhook-id), or with --since every failed or dead delivery created since a time')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Send a webhook.test event to the endpoint (watch it with `shop webhook deliveries`)')
            [CompletionResult]::new('rotate-secret', 'rotate-secret', [CompletionResultType]::ParameterValue, 'Make a new signing secret and print it; the old one keeps signing for the server''s overlap (24 h by default), so receivers can switch without a gap')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove an endpoint and its delivery log')
            break
        }
        'shop;help;webhook;add' {
            break
        }
        'shop;help;webhook;list' {
            break
        }
        'shop;help;webhook;get' {
            break
        }
        'shop;help;webhook;deliveries' {
            break
        }
        'shop;help;webhook;replay' {
            break
        }
        'shop;help;webhook;test' {
            break
        }
        'shop;help;webhook;rotate-secret' {
            break
        }
        'shop;help;webhook;remove' {
            break
        }
        'shop;help;listen' {
            break
        }
        'shop;help;dashboard' {
            break
        }
        'shop;help;db' {
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Copy the SQLite database while the server runs: one consistent snapshot, online')
            [CompletionResult]::new('copy', 'copy', [CompletionResultType]::ParameterValue, 'Copy the SQLite database into an empty PostgreSQL database, to move to several nodes')
            break
        }
        'shop;help;db;backup' {
            break
        }
        'shop;help;db;copy' {
            break
        }
        'shop;help;completions' {
            break
        }
        'shop;help;man' {
            break
        }
        'shop;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
