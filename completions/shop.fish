# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_shop_global_optspecs
    string join \n url= token= profile= o/output= q/quiet no-color idempotency-key= timeout= v/verbose h/help V/version
end

function __fish_shop_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_shop_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_shop_using_subcommand
    set -l cmd (__fish_shop_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c shop -n "__fish_shop_needs_command" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_needs_command" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_needs_command" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_needs_command" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_needs_command" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_needs_command" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_needs_command" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_needs_command" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_needs_command" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_needs_command" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_needs_command" -f -a "serve" -d 'Run the shop server: every service behind one HTTP gateway, on an embedded SQLite database'
complete -c shop -n "__fish_shop_needs_command" -f -a "login" -d 'Log in to a shop server and keep the login for later commands'
complete -c shop -n "__fish_shop_needs_command" -f -a "logout" -d 'End the stored login: revoke its session on the server and forget its tokens'
complete -c shop -n "__fish_shop_needs_command" -f -a "whoami" -d 'Show who the current login is, on which server, and until when'
complete -c shop -n "__fish_shop_needs_command" -f -a "status" -d 'Show the health of every service; exit 3 when the server is unreachable or a service is down'
complete -c shop -n "__fish_shop_needs_command" -f -a "product" -d 'Manage the catalog: add, list, change, archive and delete products; import and export (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "inventory" -d 'Watch and change stock per SKU: counts, movements, reservations, reconcile (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "fixtures" -d 'Load sample users and products from a fixtures file, like `stripe fixtures` (admin)'
complete -c shop -n "__fish_shop_needs_command" -f -a "user" -d 'Manage user accounts and roles (admin)'
complete -c shop -n "__fish_shop_needs_command" -f -a "cart" -d 'Fill a shopping cart: add, change and remove lines; your login\'s cart, or an anonymous one'
complete -c shop -n "__fish_shop_needs_command" -f -a "order" -d 'Place orders (one, or many from NDJSON on stdin) and move them along: pay, ship, deliver, cancel, refund'
complete -c shop -n "__fish_shop_needs_command" -f -a "return" -d 'Take back shipped units: open a return, approve or reject it, receive it, refund it'
complete -c shop -n "__fish_shop_needs_command" -f -a "payment" -d 'Look into payments and their refunds; refund, settle bank transfers and see analytics (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "notification" -d 'Send and track emails, SMS and push notifications; manage their templates (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "search" -d 'Search the catalog: ranked, typo-tolerant, with filters; suggestions; analytics'
complete -c shop -n "__fish_shop_needs_command" -f -a "recommend" -d 'Show products to recommend beside one: bought or viewed together, else the same category'
complete -c shop -n "__fish_shop_needs_command" -f -a "shipping" -d 'Shipping zones: where the shop ships, by which methods, at what prices (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "address" -d 'Your address book: saved addresses to ship and bill to'
complete -c shop -n "__fish_shop_needs_command" -f -a "tax" -d 'Tax rates by country, region and tax category (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "discount" -d 'Discount codes and automatic promotions: add, list, get, disable (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "customer" -d 'Every buyer, registered or guest: orders, net spent, first and last order (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "report" -d 'Reports for the books: sales per day, week or month, as a table or CSV (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "document" -d 'The templates of invoices and packing slips: show, replace with your own, reset (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "key" -d 'Make, list and revoke scoped API keys for other systems (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "audit" -d 'Who changed what and when: the audit log (admin)'
complete -c shop -n "__fish_shop_needs_command" -f -a "events" -d 'Print the event log (a table, or NDJSON when piped), and with --follow stream new events as they happen (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "webhook" -d 'Manage outbound webhook endpoints: add, list, deliveries, replay, test, rotate-secret, remove (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "listen" -d 'Forward the server\'s live events, signed, to a local URL, like `stripe listen` (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "dashboard" -d 'Watch the server live in a terminal dashboard: service health, stock, orders and searches (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "db" -d 'Work on the server\'s database file on this machine: online backups'
complete -c shop -n "__fish_shop_needs_command" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c shop -n "__fish_shop_needs_command" -f -a "man" -d 'Write man pages for shop and every subcommand into a directory'
complete -c shop -n "__fish_shop_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand serve" -l addr -d 'Address to listen on (port 0 picks a free port)' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l db -d 'SQLite database file [default: shop/shop.db under the XDG data dir]' -r -F
complete -c shop -n "__fish_shop_using_subcommand serve" -l database-url -d 'The database as a URL, which beats --db: postgres://USER@HOST/NAME for PostgreSQL, which several nodes can share, or sqlite:PATH. A password belongs in SHOP_DATABASE_URL, PGPASSWORD or ~/.pgpass, not on a command line' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l config -d 'TOML config file [default: shop/server.toml under the XDG config dir, if present]' -r -F
complete -c shop -n "__fish_shop_using_subcommand serve" -l log-format -d 'Log format: `pretty` for a terminal, `json` for collectors' -r -f -a "pretty\t''
json\t''"
complete -c shop -n "__fish_shop_using_subcommand serve" -l tls-cert -d 'Serve HTTPS with this PEM certificate chain (needs --tls-key)' -r -F
complete -c shop -n "__fish_shop_using_subcommand serve" -l tls-key -d 'The PEM private key for --tls-cert' -r -F
complete -c shop -n "__fish_shop_using_subcommand serve" -l rate-limit-ip -d 'Requests per second allowed from one client address (0: no limit)' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l rate-limit-token -d 'Requests per second allowed with one token (0: no limit)' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l rate-limit-login -d 'Login attempts per minute allowed from one client address (0: no limit)' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l access-token-ttl -d 'Lifetime of access tokens' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l session-ttl -d 'Lifetime of a login session (its refresh token), extended on each refresh' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l body-limit -d 'Largest request body accepted' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l request-timeout -d 'Longest a request may take before it is answered 504' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l cors-origin -d 'Browser origins allowed to call the API (CORS); repeat or separate with commas' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l trusted-proxy -d 'A proxy (address or CIDR) whose X-Forwarded-For names the client; repeat or separate with commas' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l durability -d '`process`: commits survive a crash or kill -9; `power`: also a power cut (an fsync per commit)' -r -f -a "process\t''
power\t''"
complete -c shop -n "__fish_shop_using_subcommand serve" -l store-name -d 'The shop\'s name on the storefront [default: shop]' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l store-color -d 'The storefront\'s brand colour, `#rrggbb`, readable on white [default: #1d4ed8]' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l store-logo -d 'An SVG or PNG logo shown in the storefront\'s header' -r -F
complete -c shop -n "__fish_shop_using_subcommand serve" -l sweep-interval -d 'How often sweepers remove expired sessions and idempotency keys' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l webhook-allow-host -d 'A host (`HOST` or `HOST:PORT`) webhook endpoints may use although it resolves to a private or loopback address, also over http://: for local development and tests; repeat or separate with commas' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand serve" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l demo -d 'Load the sample catalog (560 products in 28 categories, with stock, and sample customers) into an empty database; a database with products is left alone'
complete -c shop -n "__fish_shop_using_subcommand serve" -l no-storefront -d 'Serve no storefront at `/`; the API and the status page at `/status` remain'
complete -c shop -n "__fish_shop_using_subcommand serve" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand serve" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand serve" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand serve" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand login" -l email -d 'Account email [default: asked for, offering the profile\'s last one]' -r
complete -c shop -n "__fish_shop_using_subcommand login" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand login" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand login" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand login" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand login" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand login" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand login" -l password-stdin -d 'Read the password from the first line of stdin instead of prompting (for scripts)'
complete -c shop -n "__fish_shop_using_subcommand login" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand login" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand login" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand login" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand logout" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand logout" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand logout" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand logout" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand logout" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand logout" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand logout" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand logout" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand logout" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand logout" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand logout" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand whoami" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand whoami" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand whoami" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand whoami" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand whoami" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand whoami" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand whoami" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand whoami" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand whoami" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand whoami" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand whoami" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand status" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand status" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand status" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand status" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand status" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand status" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand status" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand status" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand status" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand status" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -f -a "add" -d 'Add a product, and with --stock its stock on hand'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -f -a "list" -d 'List products, filtered by category, price, text and stock, sorted and paged'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -f -a "get" -d 'Show one product, by id (prd_...) or SKU'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -f -a "update" -d 'Change some fields of a product; the others stay as they are'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -f -a "archive" -d 'Archive a product: hidden from the storefront and search, kept for order history'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -f -a "delete" -d 'Delete a product for good; refused while orders or carts refer to it (archive it instead)'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -f -a "categories" -d 'List the category tree with the number of active products in and below each'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -f -a "import" -d 'Create or update products in bulk from a JSON, NDJSON or CSV file, matched by SKU'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -f -a "export" -d 'Write the catalog as NDJSON, JSON or CSV, in the form `product import` reads back'
complete -c shop -n "__fish_shop_using_subcommand product; and not __fish_seen_subcommand_from add list get update archive delete categories import export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l sku -d 'Stock keeping unit: upper-case letters, digits, `.`, `_` and `-`, like CHAIR-01' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l name -d 'The product\'s name' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l price -d 'The price as a decimal in the currency, like 19.99' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l currency -d 'ISO 4217 currency of the price' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l category -d 'Category path, like furniture/chairs' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l stock -d 'Units on hand to start with' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l low-stock -d 'Alert when this many or fewer units are available' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l description -d 'Longer text for the product page and search' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l attr -d 'An attribute, KEY=VALUE (colour=red); repeat for more' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l image -d 'An image URL (https://...); repeat for more, in display order' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l weight-grams -d 'Shipping weight in grams; per-kg shipping methods need it' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l tax-category -d 'Tax category for reduced rates, like books (none: the standard rate)' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l no-shipping -d 'Goods nobody ships (a download, a gift card): orders of only these need no address'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l category -d 'Only this category and the categories under it' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l min-price -d 'Only products priced at least this much (a decimal, like 10.00)' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l max-price -d 'Only products priced at most this much (a decimal, like 99.99)' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -s s -l search -d 'Only products whose SKU, name or description contains this text' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l sort -d 'Order: price, -price, name, -name, created_at or -created_at (- for descending)' -r -f -a "price\t''
-price\t''
name\t''
-name\t''
created_at\t''
-created_at\t''"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l limit -d 'Rows per page' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l offset -d 'Rows to skip' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l in-stock -d 'Only products with stock available'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l archived -d 'Only archived products (instead of active ones)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l all-statuses -d 'Active and archived products alike'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l all -d 'Every matching row, fetching page after page'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -l history -d 'Show the product\'s audit log (who changed what, newest first; admin) instead'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l name -d 'New name' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l price -d 'New price as a decimal, like 19.99 (in --currency, else the product\'s currency)' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l currency -d 'New ISO 4217 currency' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l category -d 'New category path; an empty one ("") removes the category' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l description -d 'New description' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l attr -d 'Set an attribute, KEY=VALUE, or remove one, KEY=; repeat for more' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l image -d 'The new image URLs, replacing all images; repeat for more' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l weight-grams -d 'New shipping weight in grams' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l tax-category -d 'New tax category; an empty one ("") gives the standard rate again' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l version -d 'Apply only if the product is still at this version (else exit 5)' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l activate -d 'Make an archived product active again'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from archive" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from archive" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from archive" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from archive" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from archive" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from archive" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from archive" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from archive" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from archive" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from archive" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from archive" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Do not ask for confirmation (needed when not on a terminal)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from categories" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from categories" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from categories" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from categories" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from categories" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from categories" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from categories" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from categories" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from categories" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from categories" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from categories" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -l format -d 'json, ndjson or csv [default: from the file\'s extension]' -r -f -a "json\t''
ndjson\t''
csv\t''"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -l stock -d 'What a row\'s stock does to a product that exists: ignore it, set the on-hand count to it, or add it to the on-hand count (a delivery)' -r -f -a "ignore\t''
set\t''
add\t''"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -l dry-run -d 'Check every row and report what would change, changing nothing'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from import" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -l format -d 'ndjson, json or csv' -r -f -a "json\t''
ndjson\t''
csv\t''"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -l output-file -d 'Write to this file instead of stdout (replaced only once the export is complete)' -r -F
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -l status -d 'Which products: active, archived or all' -r -f -a "active\t''
archived\t''
all\t''"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a product, and with --stock its stock on hand'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "list" -d 'List products, filtered by category, price, text and stock, sorted and paged'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one product, by id (prd_...) or SKU'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change some fields of a product; the others stay as they are'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "archive" -d 'Archive a product: hidden from the storefront and search, kept for order history'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a product for good; refused while orders or carts refer to it (archive it instead)'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "categories" -d 'List the category tree with the number of active products in and below each'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "import" -d 'Create or update products in bulk from a JSON, NDJSON or CSV file, matched by SKU'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write the catalog as NDJSON, JSON or CSV, in the form `product import` reads back'
complete -c shop -n "__fish_shop_using_subcommand product; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -f -a "list" -d 'List stock per SKU, lowest available first'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -f -a "get" -d 'Show a SKU\'s stock, and with --history its latest movements'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -f -a "set" -d 'Set the count on hand (a stocktake)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -f -a "adjust" -d 'Add units to or take units from the count on hand'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -f -a "reservations" -d 'List reservations, newest first, by SKU, status or reference'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -f -a "reserve" -d 'Hold units of a SKU for a while (a cart, an order); they are not available meanwhile'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -f -a "release" -d 'Give a reservation\'s units back'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -f -a "commit" -d 'Turn a reservation into a sale: its units leave the count on hand'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -f -a "low" -d 'List the SKUs at or below their low-stock threshold (same as list --low)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -f -a "reconcile" -d 'Check that reserved counts match the active reservations and the ledger matches the counts on hand; exit 5 when they drift'
complete -c shop -n "__fish_shop_using_subcommand inventory; and not __fish_seen_subcommand_from list get set adjust reservations reserve release commit low reconcile help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -s s -l search -d 'Only SKUs containing this text' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -l sort -d 'Order: available (lowest first) or sku' -r -f -a "available\t''
sku\t''"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -l limit -d 'Rows per page' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -l offset -d 'Rows to skip' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -l low -d 'Only SKUs at or below their low-stock threshold'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -l all -d 'Every matching row, fetching page after page'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -l limit -d 'Movements to show with --history' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -l history -d 'Also list the movements (stocktakes, adjustments, reservations), newest first'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -l reason -d 'Why: kept in the SKU\'s movement ledger' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -l low-stock -d 'Also set the low-stock threshold: alert at this many available or fewer' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -l reason -d 'Why: kept in the SKU\'s movement ledger' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from adjust" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l sku -d 'Only this SKU\'s reservations' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l status -d 'Only this status: active, committed, released or expired' -r -f -a "active\t''
committed\t''
released\t''
expired\t''"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l reference -d 'Only reservations with exactly this reference' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l limit -d 'Rows per page' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l offset -d 'Rows to skip' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l all -d 'Every matching row, fetching page after page'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reservations" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -l ttl -d 'How long the hold lasts unless committed or released: seconds (900) or 30s, 15m, 2h, 1d [default: 15m]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -l reference -d 'What the hold is for, e.g. a cart or order id' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reserve" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from release" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from release" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from release" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from release" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from release" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from release" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from release" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from release" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from release" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from release" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from release" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from commit" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from commit" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from commit" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from commit" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from commit" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from commit" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from commit" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from commit" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from commit" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from commit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from commit" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -l limit -d 'Rows per page' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -l offset -d 'Rows to skip' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -l all -d 'Every matching row, fetching page after page'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from low" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -l fix -d 'Repair the drift found (the counts are recomputed from the reservations and ledger)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from reconcile" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from help" -f -a "list" -d 'List stock per SKU, lowest available first'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show a SKU\'s stock, and with --history its latest movements'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from help" -f -a "set" -d 'Set the count on hand (a stocktake)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from help" -f -a "adjust" -d 'Add units to or take units from the count on hand'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from help" -f -a "reservations" -d 'List reservations, newest first, by SKU, status or reference'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from help" -f -a "reserve" -d 'Hold units of a SKU for a while (a cart, an order); they are not available meanwhile'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from help" -f -a "release" -d 'Give a reservation\'s units back'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from help" -f -a "commit" -d 'Turn a reservation into a sale: its units leave the count on hand'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from help" -f -a "low" -d 'List the SKUs at or below their low-stock threshold (same as list --low)'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from help" -f -a "reconcile" -d 'Check that reserved counts match the active reservations and the ledger matches the counts on hand; exit 5 when they drift'
complete -c shop -n "__fish_shop_using_subcommand inventory; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -f -a "load" -d 'Load users and products (with stock) from a fixtures file; safe to run again'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and not __fish_seen_subcommand_from load help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -l dry-run -d 'Report what would be created and updated, changing nothing'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from load" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from help" -f -a "load" -d 'Load users and products (with stock) from a fixtures file; safe to run again'
complete -c shop -n "__fish_shop_using_subcommand fixtures; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -f -a "list" -d 'List users, newest last; filter by role or by text in the email or name'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -f -a "get" -d 'Show one user, by id (usr_...) or email'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -f -a "create" -d 'Create a user with any role. The password is prompted for, or read from stdin'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -f -a "role" -d 'Change a user\'s role (admin, staff or customer). The last admin cannot be demoted'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -f -a "password" -d 'Change your own password: the current one, then the new one twice. Your other sessions end; this one stays signed in'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -f -a "verify" -d 'Prove your email address with the code from the welcome email; orders placed for the address without signing in then join your account'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -f -a "reset-password" -d 'A forgotten password: ask for a reset email with --email, then set a new password with the code it brings (--token; it works once, for 30 minutes). Every session of the account ends'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role password verify reset-password help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l role -d 'Only users with this role: admin, staff or customer' -r -f -a "admin\t''
staff\t''
customer\t''"
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -s s -l search -d 'Only users whose email or name contains this text (case-insensitive)' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l limit -d 'Users per page' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l offset -d 'Users to skip' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l all -d 'Every matching user, fetching page after page'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l email -d 'The new user\'s email, which they log in with' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l name -d 'Display name' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l role -d 'admin, staff or customer' -r -f -a "admin\t''
staff\t''
customer\t''"
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l password-stdin -d 'Read the password from the first line of stdin instead of prompting'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -l password-stdin -d 'Read the current password and the new one from the first two lines of stdin'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from password" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from verify" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from verify" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from verify" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from verify" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from verify" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from verify" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from verify" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from verify" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -l email -d 'The account\'s email; a reset email goes there if it has an account' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -l token -d 'The code from the reset email' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -l password-stdin -d 'Read the new password from the first line of stdin instead of prompting'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from reset-password" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "list" -d 'List users, newest last; filter by role or by text in the email or name'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one user, by id (usr_...) or email'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a user with any role. The password is prompted for, or read from stdin'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "role" -d 'Change a user\'s role (admin, staff or customer). The last admin cannot be demoted'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "password" -d 'Change your own password: the current one, then the new one twice. Your other sessions end; this one stays signed in'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Prove your email address with the code from the welcome email; orders placed for the address without signing in then join your account'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "reset-password" -d 'A forgotten password: ask for a reset email with --email, then set a new password with the code it brings (--token; it works once, for 30 minutes). Every session of the account ends'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -l cart-token -d 'The token of an anonymous cart (printed once when it was made); used when not logged in' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -l cart -d 'Act on this cart (crt_...) instead of the active one' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -f -a "show" -d 'Show the cart: its lines, subtotal, version and when it expires'
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -f -a "add" -d 'Add units of a SKU, to its line if the cart has one; makes the cart on first use'
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -f -a "update" -d 'Set a line\'s quantity; 0 removes the line'
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -f -a "remove" -d 'Remove a SKU\'s line'
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -f -a "clear" -d 'Remove every line; the cart itself stays'
complete -c shop -n "__fish_shop_using_subcommand cart; and not __fish_seen_subcommand_from show add update remove clear help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -l cart-token -d 'The token of an anonymous cart (printed once when it was made); used when not logged in' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -l cart -d 'Act on this cart (crt_...) instead of the active one' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -l expected-version -d 'Apply only if the cart is still at this version (else exit 5)' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -l cart-token -d 'The token of an anonymous cart (printed once when it was made); used when not logged in' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -l cart -d 'Act on this cart (crt_...) instead of the active one' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -l expected-version -d 'Apply only if the cart is still at this version (else exit 5)' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -l cart-token -d 'The token of an anonymous cart (printed once when it was made); used when not logged in' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -l cart -d 'Act on this cart (crt_...) instead of the active one' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -l expected-version -d 'Apply only if the cart is still at this version (else exit 5)' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -l cart-token -d 'The token of an anonymous cart (printed once when it was made); used when not logged in' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -l cart -d 'Act on this cart (crt_...) instead of the active one' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -l expected-version -d 'Apply only if the cart is still at this version (else exit 5)' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -l cart-token -d 'The token of an anonymous cart (printed once when it was made); used when not logged in' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -l cart -d 'Act on this cart (crt_...) instead of the active one' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from clear" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show the cart: its lines, subtotal, version and when it expires'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add units of a SKU, to its line if the cart has one; makes the cart on first use'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from help" -f -a "update" -d 'Set a line\'s quantity; 0 removes the line'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a SKU\'s line'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from help" -f -a "clear" -d 'Remove every line; the cart itself stays'
complete -c shop -n "__fish_shop_using_subcommand cart; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "create" -d 'Place an order from --item lines or a cart, and with --pay pay it at once; `order create -` places one order per NDJSON line of stdin'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "quote" -d 'Price an order without placing it: subtotal, discounts, shipping, tax and total, and the shipping methods for the address'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "list" -d 'List orders, newest first, by status, payment (financial status), customer and date'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "get" -d 'Show one order with its items and status history'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "pay" -d 'Pay a pending order (one whose payment was declined, or that was placed without --pay)'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "ship" -d 'Ship a paid order, all that is left of it or some --item units, or many orders from a CSV file (--from-file) (staff); one refunded in full is refused (exit 5)'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "deliver" -d 'Mark a shipped order delivered (staff)'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "cancel" -d 'Cancel a pending order (its stock is released) or a paid one (staff: what is left of its payment is refunded to the customer and its items are restocked)'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "refund" -d 'Refund an order\'s payment, all that is left of it or --amount (staff)'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "analytics" -d 'Orders by status, revenue by day, average order value and best sellers (staff)'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "invoice" -d 'Print an order\'s invoice (HTML, or --pdf); its number is issued the first time'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "packing-slip" -d 'Print an order\'s packing slip: what is left to pack and where it goes (staff)'
complete -c shop -n "__fish_shop_using_subcommand order; and not __fish_seen_subcommand_from create quote list get pay ship deliver cancel refund analytics invoice packing-slip help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l item -d 'A line of the order, SKU[:QTY] (like CHAIR-01:2; one unit without :QTY); repeat for more' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l cart -d 'Check out this cart (crt_..., see `shop cart show -q`) instead of --item lines' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l customer -d 'The customer\'s email [default: yours]; staff may order for any customer' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l pay -d 'Pay at once: card:NUMBER[:MM/YY[:CVC]], apple_pay:TOKEN, google_pay:TOKEN, paypal:TOKEN or bank_transfer' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l ship-to -d 'The shipping address, a JSON file {name,line1,line2?,city,region?,postal_code,country,phone?}' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l country -d 'The country shipped to (ISO 3166-1 alpha-2, like DE), with --name, --line1, --city and --postal-code for an order; alone for a quote' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l region -d 'The region (state, province) shipped to, for regional tax rates' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l name -d 'The recipient, with --country' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l line1 -d 'The street and number, with --country' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l city -d 'The city, with --country' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l postal-code -d 'The postal code, with --country' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l address -d 'A saved address (adr_..., `shop address list`) to ship to' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l shipping -d 'The shipping method\'s code (`shop order quote` lists them for an address)' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l discount -d 'A discount code; repeat for more' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l concurrency -d 'With `-`: orders sent at once (results are still written in input order) [default: 8]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l item -d 'A line, SKU[:QTY] (like CHAIR-01:2); repeat for more' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l ship-to -d 'The shipping address, a JSON file {name,line1,line2?,city,region?,postal_code,country,phone?}' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l country -d 'The country shipped to (ISO 3166-1 alpha-2, like DE), with --name, --line1, --city and --postal-code for an order; alone for a quote' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l region -d 'The region (state, province) shipped to, for regional tax rates' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l name -d 'The recipient, with --country' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l line1 -d 'The street and number, with --country' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l city -d 'The city, with --country' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l postal-code -d 'The postal code, with --country' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l address -d 'A saved address (adr_..., `shop address list`) to ship to' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l shipping -d 'The shipping method\'s code (`shop order quote` lists them for an address)' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l discount -d 'A discount code; repeat for more' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from quote" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l status -d 'Only this status: pending, paid, shipped, delivered or cancelled' -r -f -a "pending\t''
paid\t''
shipped\t''
delivered\t''
cancelled\t''"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l financial-status -d 'Only orders whose money stands so: pending, paid, partially_refunded, refunded or voided' -r -f -a "pending\t''
paid\t''
partially_refunded\t''
refunded\t''
voided\t''"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l customer -d 'Only this customer\'s orders' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l from -d 'Only orders placed at or after this day (2026-11-01) or time (RFC 3339)' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l to -d 'Only orders placed before this day\'s end (2026-11-30) or this time (RFC 3339)' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l limit -d 'Rows per page' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l offset -d 'Rows to skip' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l all -d 'Every matching row, fetching page after page'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from get" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from get" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from get" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from get" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from get" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -l pay -d 'How to pay: card:NUMBER[:MM/YY[:CVC]], apple_pay:TOKEN, google_pay:TOKEN, paypal:TOKEN or bank_transfer' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from pay" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l carrier -d 'The carrier, e.g. ups, fedex, dhl or usps' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l tracking -d 'The carrier\'s tracking number (the order\'s tracking_number)' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l tracking-url -d 'The tracking page, instead of the carrier\'s [default: from the carrier]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l item -d 'Ship only these units (repeatable) [default: everything left]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l note -d 'A note for the order\'s history' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l from-file -d 'Ship one order per row of this CSV file (- for stdin)' -r -F
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from ship" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -l note -d 'A note for the order\'s history' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from deliver" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -l note -d 'Why, for the order\'s history' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -s y -l yes -d 'Do not ask before refunding a paid order (needed when not on a terminal)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from cancel" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -l amount -d 'How much, as a decimal like 12.50 [default: all that is left]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -l reason -d 'Why, kept with the refund' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -s y -l yes -d 'Do not ask before refunding everything left (needed when not on a terminal)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from refund" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from analytics" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from analytics" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from analytics" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from analytics" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from analytics" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from analytics" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from analytics" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from analytics" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from analytics" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from analytics" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from analytics" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -l output-file -d 'Write to this file instead of stdout' -r -F
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -l pdf -d 'A PDF instead of HTML from the shop\'s template'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from invoice" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -l output-file -d 'Write to this file instead of stdout' -r -F
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -l pdf -d 'A PDF instead of HTML from the shop\'s template'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from packing-slip" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "create" -d 'Place an order from --item lines or a cart, and with --pay pay it at once; `order create -` places one order per NDJSON line of stdin'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "quote" -d 'Price an order without placing it: subtotal, discounts, shipping, tax and total, and the shipping methods for the address'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "list" -d 'List orders, newest first, by status, payment (financial status), customer and date'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one order with its items and status history'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "pay" -d 'Pay a pending order (one whose payment was declined, or that was placed without --pay)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "ship" -d 'Ship a paid order, all that is left of it or some --item units, or many orders from a CSV file (--from-file) (staff); one refunded in full is refused (exit 5)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "deliver" -d 'Mark a shipped order delivered (staff)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "cancel" -d 'Cancel a pending order (its stock is released) or a paid one (staff: what is left of its payment is refunded to the customer and its items are restocked)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "refund" -d 'Refund an order\'s payment, all that is left of it or --amount (staff)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "analytics" -d 'Orders by status, revenue by day, average order value and best sellers (staff)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "invoice" -d 'Print an order\'s invoice (HTML, or --pdf); its number is issued the first time'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "packing-slip" -d 'Print an order\'s packing slip: what is left to pack and where it goes (staff)'
complete -c shop -n "__fish_shop_using_subcommand order; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -f -a "create" -d 'Open a return of shipped units of an order, each with a reason'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -f -a "list" -d 'List returns, newest first: your own, or all for staff'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -f -a "get" -d 'Show one return'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -f -a "approve" -d 'Approve a requested return (staff)'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -f -a "reject" -d 'Reject a requested return (staff); its units may be returned again'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -f -a "receive" -d 'Record an approved return as arrived (staff): its units go back on hand'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -f -a "refund" -d 'Refund a received return through its order\'s payment (staff): what its items were charged, and with --include-shipping the order\'s shipping too'
complete -c shop -n "__fish_shop_using_subcommand return; and not __fish_seen_subcommand_from create list get approve reject receive refund help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -l item -d 'SKU:QTY:REASON (repeatable)' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -l note -d 'A note kept with the return' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -l status -d 'Only this status: requested, approved, rejected, received or refunded' -r -f -a "requested\t''
approved\t''
rejected\t''
received\t''
refunded\t''"
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -l limit -d 'Rows per page' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -l offset -d 'Rows to skip' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -l open -d 'Only those still waiting on the shop (requested, approved, received)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -l all -d 'Every matching row, fetching page after page'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from get" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from get" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from get" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from get" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from get" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -l note -d 'A note kept with the return' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from approve" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -l note -d 'Why, for the customer\'s email' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from reject" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -l no-restock -d 'Do not restock (damaged goods); the units stay off the shelf'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from receive" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -l include-shipping -d 'Give back the order\'s shipping (with its tax) as well; one return of an order at most'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from refund" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from help" -f -a "create" -d 'Open a return of shipped units of an order, each with a reason'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from help" -f -a "list" -d 'List returns, newest first: your own, or all for staff'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one return'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from help" -f -a "approve" -d 'Approve a requested return (staff)'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from help" -f -a "reject" -d 'Reject a requested return (staff); its units may be returned again'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from help" -f -a "receive" -d 'Record an approved return as arrived (staff): its units go back on hand'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from help" -f -a "refund" -d 'Refund a received return through its order\'s payment (staff): what its items were charged, and with --include-shipping the order\'s shipping too'
complete -c shop -n "__fish_shop_using_subcommand return; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -f -a "list" -d 'List payment attempts, newest first, by status, order and method'
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -f -a "get" -d 'Show one payment with its refunds'
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -f -a "refund" -d 'Refund a payment, all that is left of it or --amount'
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -f -a "settle" -d 'Mark a pending bank transfer as received: the payment succeeds and its order is paid'
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -f -a "analytics" -d 'Attempts, success and refund rates, volume per currency and counts per method'
complete -c shop -n "__fish_shop_using_subcommand payment; and not __fish_seen_subcommand_from list get refund settle analytics help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l status -d 'Only this status: processing, pending, succeeded, failed, cancelled or refunded' -r -f -a "processing\t''
pending\t''
succeeded\t''
failed\t''
cancelled\t''
canceled\t''
refunded\t''"
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l order -d 'Only the payments of this order, by id (ord_...) or number (ORD-001042)' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l method -d 'Only this method: card, apple_pay, google_pay, paypal or bank_transfer' -r -f -a "card\t''
apple_pay\t''
google_pay\t''
paypal\t''
bank_transfer\t''"
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l limit -d 'Rows per page' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l offset -d 'Rows to skip' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l all -d 'Every matching row, fetching page after page'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from get" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from get" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from get" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from get" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from get" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -l amount -d 'How much, as a decimal like 12.50 [default: all that is left]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -l reason -d 'Why, kept with the refund' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -s y -l yes -d 'Do not ask before refunding everything left (needed when not on a terminal)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from refund" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from settle" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from settle" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from settle" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from settle" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from settle" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from settle" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from settle" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from settle" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from settle" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from settle" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from settle" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from analytics" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from analytics" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from analytics" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from analytics" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from analytics" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from analytics" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from analytics" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from analytics" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from analytics" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from analytics" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from analytics" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from help" -f -a "list" -d 'List payment attempts, newest first, by status, order and method'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one payment with its refunds'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from help" -f -a "refund" -d 'Refund a payment, all that is left of it or --amount'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from help" -f -a "settle" -d 'Mark a pending bank transfer as received: the payment succeeds and its order is paid'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from help" -f -a "analytics" -d 'Attempts, success and refund rates, volume per currency and counts per method'
complete -c shop -n "__fish_shop_using_subcommand payment; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -f -a "list" -d 'List notifications, newest first, filtered by status, channel, template, recipient or priority'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -f -a "get" -d 'Show one notification: its rendered text and every delivery attempt'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -f -a "send" -d 'Queue a notification from a template'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -f -a "resend" -d 'Send a failed or dead notification again (a sent one is copied into a new notification)'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -f -a "templates" -d 'List every template: the built-ins and the user-defined ones'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -f -a "template" -d 'Add or show a user-defined template'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -f -a "analytics" -d 'Counts by channel and template and status, the median time to send, and the queue depth'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -f -a "deliveries" -d 'What the local sinks delivered (the channels with no provider configured), newest first'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l status -d 'Only this status: queued, sending, sent, failed or dead' -r -f -a "queued\t''
sending\t''
sent\t''
failed\t''
dead\t''"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l channel -d 'Only this channel: email, sms or push' -r -f -a "email\t''
sms\t''
push\t''"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l template -d 'Only notifications from this template' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l recipient -d 'Only notifications to exactly this recipient' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l priority -d 'Only this priority: urgent, high, normal or low' -r -f -a "urgent\t''
high\t''
normal\t''
low\t''"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l limit -d 'Notifications per page' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l offset -d 'Notifications to skip' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l channel -d 'The channel: email, sms or push' -r -f -a "email\t''
sms\t''
push\t''"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l to -d 'The recipient: an email address, an E.164 phone number (+4915112345678) or a device token' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l template -d 'The template to render, e.g. welcome or order_confirmation (see `shop notification templates`)' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l var -d 'A template variable, `key=text` or `key:=JSON`; repeat for more' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l priority -d 'Queue order: urgent, high, normal or low [default: normal]' -r -f -a "urgent\t''
high\t''
normal\t''
low\t''"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l at -d 'Send later: an RFC 3339 time (2026-12-24T09:00:00Z) or a delay (+30m, +2h, +1d)' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -f -a "add" -d 'Add a template, or replace a user-defined one of the same name and channel. It is compiled on save: a syntax error is refused with its line'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -f -a "show" -d 'Show a template, one entry per channel it exists for'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -l channel -d 'Only this channel: email, sms or push' -r -f -a "email\t''
sms\t''
push\t''"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -l recipient -d 'Only deliveries to exactly this recipient' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -l limit -d 'Deliveries per page' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from help" -f -a "list" -d 'List notifications, newest first, filtered by status, channel, template, recipient or priority'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one notification: its rendered text and every delivery attempt'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from help" -f -a "send" -d 'Queue a notification from a template'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from help" -f -a "resend" -d 'Send a failed or dead notification again (a sent one is copied into a new notification)'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from help" -f -a "templates" -d 'List every template: the built-ins and the user-defined ones'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from help" -f -a "template" -d 'Add or show a user-defined template'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from help" -f -a "analytics" -d 'Counts by channel and template and status, the median time to send, and the queue depth'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from help" -f -a "deliveries" -d 'What the local sinks delivered (the channels with no provider configured), newest first'
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l category -d 'Only this category and those below it, like furniture or furniture/chairs' -r
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l min-price -d 'Lowest price, a decimal like 19.99' -r
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l max-price -d 'Highest price, a decimal like 19.99' -r
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l limit -d 'Results per page' -r
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l offset -d 'Results to skip' -r
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l in-stock -d 'Only products with stock available'
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -a "suggest" -d 'Complete what has been typed, from product names and past searches, most popular first'
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -a "analytics" -d 'Top queries, queries that found nothing, and search volume (staff)'
complete -c shop -n "__fish_shop_using_subcommand search; and not __fish_seen_subcommand_from suggest analytics help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -l limit -d 'How many suggestions' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from suggest" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -l hours -d 'The window, in hours back from now' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -l limit -d 'Entries per list' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from analytics" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from help" -f -a "suggest" -d 'Complete what has been typed, from product names and past searches, most popular first'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from help" -f -a "analytics" -d 'Top queries, queries that found nothing, and search volume (staff)'
complete -c shop -n "__fish_shop_using_subcommand search; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand recommend" -l limit -d 'How many recommendations' -r
complete -c shop -n "__fish_shop_using_subcommand recommend" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand recommend" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand recommend" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand recommend" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand recommend" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand recommend" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand recommend" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand recommend" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand recommend" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand recommend" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand recommend" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -f -a "zone" -d 'Shipping zones: countries shipped to alike, each with its methods and prices'
complete -c shop -n "__fish_shop_using_subcommand shipping; and not __fish_seen_subcommand_from zone help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -f -a "add" -d 'Add a zone; a country belongs to one zone'
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -f -a "list" -d 'List the zones and their methods'
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -f -a "remove" -d 'Remove a zone (orders keep the shipping they were sold with)'
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from zone" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from help" -f -a "zone" -d 'Shipping zones: countries shipped to alike, each with its methods and prices'
complete -c shop -n "__fish_shop_using_subcommand shipping; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -f -a "list" -d 'List the saved addresses, oldest first'
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -f -a "add" -d 'Save an address (at most 20); checked as a checkout checks one'
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -f -a "delete" -d 'Delete a saved address (orders that used it keep their copy)'
complete -c shop -n "__fish_shop_using_subcommand address; and not __fish_seen_subcommand_from list add delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l from-file -d 'The address as a JSON file {name,line1,line2?,city,region?,postal_code,country,phone?}' -r -F
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l name -d 'The recipient' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l line1 -d 'The street and number' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l line2 -d 'A second address line (flat, floor, c/o)' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l city -d 'The city or town' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l region -d 'The state, province or county, like CA' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l postal-code -d 'The postal or ZIP code' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l country -d 'ISO 3166-1 alpha-2, like DE' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l phone -d 'A phone number for the carrier' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l default-shipping -d 'Offer it first for shipping (the previous default loses the flag)'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l default-billing -d 'Offer it first for billing (the previous default loses the flag)'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from delete" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from delete" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from delete" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from delete" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from delete" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from delete" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the saved addresses, oldest first'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from help" -f -a "add" -d 'Save an address (at most 20); checked as a checkout checks one'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a saved address (orders that used it keep their copy)'
complete -c shop -n "__fish_shop_using_subcommand address; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -f -a "rate" -d 'Tax rates by country and region'
complete -c shop -n "__fish_shop_using_subcommand tax; and not __fish_seen_subcommand_from rate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -f -a "add" -d 'Add a rate; one per country, region and tax category'
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -f -a "list" -d 'List the rates'
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -f -a "remove" -d 'Remove a rate (orders keep the tax they were sold with)'
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from rate" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from help" -f -a "rate" -d 'Tax rates by country and region'
complete -c shop -n "__fish_shop_using_subcommand tax; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -f -a "add" -d 'Add a discount code, or with --automatic a promotion every order that qualifies gets'
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -f -a "list" -d 'List discounts with how often each was used'
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -f -a "get" -d 'Show one discount, by id (dsc_...) or code'
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -f -a "disable" -d 'Disable a discount: no order gets it any more'
complete -c shop -n "__fish_shop_using_subcommand discount; and not __fish_seen_subcommand_from add list get disable help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l code -d 'The code customers type (kept upper case); leave out with --automatic' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l percent -d 'Percent off the goods, like 10 or 12.5' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l amount -d 'An amount off the goods, a decimal in --currency' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l currency -d 'The currency of --amount and --min-subtotal' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l min-subtotal -d 'The least the goods must cost, a decimal in --currency (USD when not given)' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l starts -d 'Valid from (RFC 3339, or YYYY-MM-DD for midnight UTC)' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l ends -d 'Valid until, excluded (RFC 3339, or YYYY-MM-DD for midnight UTC)' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l limit -d 'Uses in all; a cancelled or fully refunded order gives its use back' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l per-customer -d 'Uses per customer' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l free-shipping -d 'Shipping costs nothing'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l automatic -d 'Applied to every order that meets its conditions, without a code'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from get" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from get" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from get" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from get" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from get" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from disable" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from disable" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from disable" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from disable" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from disable" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from disable" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from disable" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from disable" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from disable" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from disable" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a discount code, or with --automatic a promotion every order that qualifies gets'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from help" -f -a "list" -d 'List discounts with how often each was used'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one discount, by id (dsc_...) or code'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Disable a discount: no order gets it any more'
complete -c shop -n "__fish_shop_using_subcommand discount; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -f -a "list" -d 'List buyers, newest first; search by email or name'
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -f -a "get" -d 'One buyer by email, with what they spent in each currency'
complete -c shop -n "__fish_shop_using_subcommand customer; and not __fish_seen_subcommand_from list get help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -s s -l search -d 'Only those with this text in their email or name (any case)' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -l limit -d 'How many to show' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -l offset -d 'How many to skip (for the next page)' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from get" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from get" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from get" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from get" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from get" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from help" -f -a "list" -d 'List buyers, newest first; search by email or name'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from help" -f -a "get" -d 'One buyer by email, with what they spent in each currency'
complete -c shop -n "__fish_shop_using_subcommand customer; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -f -a "sales" -d 'Sales per period and currency; an order counts on the UTC day it was placed, once money was taken for it, net of what was refunded'
complete -c shop -n "__fish_shop_using_subcommand report; and not __fish_seen_subcommand_from sales help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -l from -d 'The first day, YYYY-MM-DD (UTC) [default: 29 days before --to]' -r
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -l to -d 'The last day, included, YYYY-MM-DD (UTC) [default: today]' -r
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -l group -d 'One row per day, ISO week or month (and currency)' -r
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from sales" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "sales" -d 'Sales per period and currency; an order counts on the UTC day it was placed, once money was taken for it, net of what was refunded'
complete -c shop -n "__fish_shop_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -f -a "templates" -d 'List the document templates, and whether each is the shop\'s own or the built-in one'
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -f -a "template" -d 'Show, replace or reset one document\'s template'
complete -c shop -n "__fish_shop_using_subcommand document; and not __fish_seen_subcommand_from templates template help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from templates" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from templates" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from templates" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from templates" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from templates" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from templates" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from templates" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from templates" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from templates" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from templates" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from templates" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -f -a "show" -d 'Print a template\'s HTML (the shop\'s own, or the built-in one to start from)'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -f -a "set" -d 'Replace a template with the shop\'s own HTML. It must render a sample order: an unknown variable or a syntax error is refused with its line'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -f -a "reset" -d 'Go back to the built-in template'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from template" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from help" -f -a "templates" -d 'List the document templates, and whether each is the shop\'s own or the built-in one'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from help" -f -a "template" -d 'Show, replace or reset one document\'s template'
complete -c shop -n "__fish_shop_using_subcommand document; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -f -a "create" -d 'Make a key; its secret is printed once, so store it at once'
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -f -a "list" -d 'List keys (yours; an admin sees everyone\'s). Secrets are never shown'
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -f -a "revoke" -d 'Revoke a key: it stops working at once'
complete -c shop -n "__fish_shop_using_subcommand key; and not __fish_seen_subcommand_from create list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -l name -d 'What the key is for, e.g. the system that will use it' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -l scope -d 'A scope the key holds; repeat for more' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -l expires-in -d 'The key stops working after this long (like 30d, 12h); never, when absent' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from revoke" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from revoke" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from revoke" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from revoke" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from revoke" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from revoke" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from revoke" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from revoke" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from revoke" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "create" -d 'Make a key; its secret is printed once, so store it at once'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "list" -d 'List keys (yours; an admin sees everyone\'s). Secrets are never shown'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a key: it stops working at once'
complete -c shop -n "__fish_shop_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand audit" -l entity -d 'Only changes to this kind of thing: product, stock, order, payment, user, template, key, reservation' -r
complete -c shop -n "__fish_shop_using_subcommand audit" -l entity-id -d 'Only changes to this one (a product\'s prd_..., a stock row\'s SKU, an order\'s ord_...)' -r
complete -c shop -n "__fish_shop_using_subcommand audit" -l actor -d 'Only changes by this person (email), user or key id, or `system`' -r
complete -c shop -n "__fish_shop_using_subcommand audit" -l action -d 'Only this action (product.updated) or family (product)' -r
complete -c shop -n "__fish_shop_using_subcommand audit" -l since -d 'Only changes made within this long (like 30m, 1h, 7d)' -r
complete -c shop -n "__fish_shop_using_subcommand audit" -l limit -d 'How many entries to show' -r
complete -c shop -n "__fish_shop_using_subcommand audit" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand audit" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand audit" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand audit" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand audit" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand audit" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand audit" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand audit" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand audit" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand audit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand audit" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand events" -s t -l type -d 'Only these event types: a name (`order.paid`) or a prefix ending in `*` (`order.*`, `*` for all); repeat or separate with commas' -r
complete -c shop -n "__fish_shop_using_subcommand events" -l after -d 'Start after this event id [default: the start of the log]' -r
complete -c shop -n "__fish_shop_using_subcommand events" -l tail -d 'Only the last N events of the log (0: none, with --follow only new ones)' -r
complete -c shop -n "__fish_shop_using_subcommand events" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand events" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand events" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand events" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand events" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand events" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand events" -s f -l follow -d 'After the log, keep printing new events as they happen (Ctrl-C stops)'
complete -c shop -n "__fish_shop_using_subcommand events" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand events" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand events" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand events" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand events" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -f -a "add" -d 'Add an endpoint; prints its signing secret (whsec_...), shown only this once'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -f -a "list" -d 'List the endpoints'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -f -a "get" -d 'Show one endpoint (without its secret)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -f -a "deliveries" -d 'List an endpoint\'s deliveries, newest first: status, attempts, last answer'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -f -a "replay" -d 'Deliver one delivery again (same webhook-id), or with --since every failed or dead delivery created since a time'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -f -a "test" -d 'Send a webhook.test event to the endpoint (watch it with `shop webhook deliveries`)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -f -a "rotate-secret" -d 'Make a new signing secret and print it; the old one keeps signing for the server\'s overlap (24 h by default), so receivers can switch without a gap'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -f -a "remove" -d 'Remove an endpoint and its delivery log'
complete -c shop -n "__fish_shop_using_subcommand webhook; and not __fish_seen_subcommand_from add list get deliveries replay test rotate-secret remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -l event -d 'An event type (`order.paid`), a prefix (`order.*`) or `*`; repeat for more' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -l description -d 'A note for people: what this endpoint is for' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from list" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from list" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from list" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from list" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from get" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from get" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from get" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from get" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from get" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -l status -d 'Only this status: pending, succeeded, failed or dead' -r -f -a "pending\t''
succeeded\t''
failed\t''
dead\t''"
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -l limit -d 'Deliveries per page' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from deliveries" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -l since -d 'Every failed or dead delivery created at or after this RFC 3339 time' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from replay" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from test" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from test" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from test" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from test" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from test" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from test" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from test" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from test" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from test" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from test" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from rotate-secret" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from rotate-secret" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from rotate-secret" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from rotate-secret" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from rotate-secret" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from rotate-secret" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from rotate-secret" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from rotate-secret" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from rotate-secret" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from rotate-secret" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from rotate-secret" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -s y -l yes -d 'Do not ask for confirmation (needed when not on a terminal)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add an endpoint; prints its signing secret (whsec_...), shown only this once'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the endpoints'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one endpoint (without its secret)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "deliveries" -d 'List an endpoint\'s deliveries, newest first: status, attempts, last answer'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "replay" -d 'Deliver one delivery again (same webhook-id), or with --since every failed or dead delivery created since a time'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "test" -d 'Send a webhook.test event to the endpoint (watch it with `shop webhook deliveries`)'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "rotate-secret" -d 'Make a new signing secret and print it; the old one keeps signing for the server\'s overlap (24 h by default), so receivers can switch without a gap'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove an endpoint and its delivery log'
complete -c shop -n "__fish_shop_using_subcommand webhook; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand listen" -l forward-to -d 'The local URL to POST each event to' -r
complete -c shop -n "__fish_shop_using_subcommand listen" -l event -d 'Only these event types: exact (`order.paid`), a prefix (`order.*`) or `*`; repeat or separate with commas' -r
complete -c shop -n "__fish_shop_using_subcommand listen" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand listen" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand listen" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand listen" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand listen" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand listen" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand listen" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand listen" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand listen" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand listen" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand listen" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l refresh-ms -d 'How often to poll the server\'s health and metrics, in milliseconds (events arrive live regardless)' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l readonly -d 'Watch only: the keys that ship, cancel, refund or adjust stock are refused'
complete -c shop -n "__fish_shop_using_subcommand dashboard" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand dashboard" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand dashboard" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand dashboard" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -f -a "backup" -d 'Copy the SQLite database while the server runs: one consistent snapshot, online'
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -f -a "copy" -d 'Copy the SQLite database into an empty PostgreSQL database, to move to several nodes'
complete -c shop -n "__fish_shop_using_subcommand db; and not __fish_seen_subcommand_from backup copy help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -l db -d 'The database to copy [default: the one `shop serve` uses]' -r -F
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -l config -d 'The server\'s TOML config file, for its `db` [default: shop/server.toml under the XDG config dir]' -r -F
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -l force -d 'Replace FILE if it exists'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from backup" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -l to -d 'The empty PostgreSQL database to fill: postgres://USER[:PASSWORD]@HOST[:PORT]/NAME' -r
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -l db -d 'The database to copy [default: the one `shop serve` uses]' -r -F
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -l config -d 'The server\'s TOML config file, for its `db` [default: shop/server.toml under the XDG config dir]' -r -F
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from copy" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "backup" -d 'Copy the SQLite database while the server runs: one consistent snapshot, online'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "copy" -d 'Copy the SQLite database into an empty PostgreSQL database, to move to several nodes'
complete -c shop -n "__fish_shop_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand completions" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand completions" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand completions" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand completions" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand completions" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand completions" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand completions" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand completions" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand completions" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand completions" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand man" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand man" -l token -d 'Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand man" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand man" -s o -l output -d 'Output format; wide is a table with ids [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table fitted to the terminal (the default on a terminal)'
wide\t'The table with more columns: ids, and times beside ages'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand man" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand man" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand man" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand man" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand man" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand man" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "serve" -d 'Run the shop server: every service behind one HTTP gateway, on an embedded SQLite database'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "login" -d 'Log in to a shop server and keep the login for later commands'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "logout" -d 'End the stored login: revoke its session on the server and forget its tokens'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "whoami" -d 'Show who the current login is, on which server, and until when'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "status" -d 'Show the health of every service; exit 3 when the server is unreachable or a service is down'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "product" -d 'Manage the catalog: add, list, change, archive and delete products; import and export (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "inventory" -d 'Watch and change stock per SKU: counts, movements, reservations, reconcile (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "fixtures" -d 'Load sample users and products from a fixtures file, like `stripe fixtures` (admin)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "user" -d 'Manage user accounts and roles (admin)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "cart" -d 'Fill a shopping cart: add, change and remove lines; your login\'s cart, or an anonymous one'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "order" -d 'Place orders (one, or many from NDJSON on stdin) and move them along: pay, ship, deliver, cancel, refund'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "return" -d 'Take back shipped units: open a return, approve or reject it, receive it, refund it'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "payment" -d 'Look into payments and their refunds; refund, settle bank transfers and see analytics (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "notification" -d 'Send and track emails, SMS and push notifications; manage their templates (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "search" -d 'Search the catalog: ranked, typo-tolerant, with filters; suggestions; analytics'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "recommend" -d 'Show products to recommend beside one: bought or viewed together, else the same category'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "shipping" -d 'Shipping zones: where the shop ships, by which methods, at what prices (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "address" -d 'Your address book: saved addresses to ship and bill to'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "tax" -d 'Tax rates by country, region and tax category (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "discount" -d 'Discount codes and automatic promotions: add, list, get, disable (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "customer" -d 'Every buyer, registered or guest: orders, net spent, first and last order (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "report" -d 'Reports for the books: sales per day, week or month, as a table or CSV (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "document" -d 'The templates of invoices and packing slips: show, replace with your own, reset (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "key" -d 'Make, list and revoke scoped API keys for other systems (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "audit" -d 'Who changed what and when: the audit log (admin)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "events" -d 'Print the event log (a table, or NDJSON when piped), and with --follow stream new events as they happen (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "webhook" -d 'Manage outbound webhook endpoints: add, list, deliveries, replay, test, rotate-secret, remove (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "listen" -d 'Forward the server\'s live events, signed, to a local URL, like `stripe listen` (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "dashboard" -d 'Watch the server live in a terminal dashboard: service health, stock, orders and searches (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "db" -d 'Work on the server\'s database file on this machine: online backups'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "man" -d 'Write man pages for shop and every subcommand into a directory'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status product inventory fixtures user cart order return payment notification search recommend shipping address tax discount customer report document key audit events webhook listen dashboard db completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from product" -f -a "add" -d 'Add a product, and with --stock its stock on hand'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from product" -f -a "list" -d 'List products, filtered by category, price, text and stock, sorted and paged'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from product" -f -a "get" -d 'Show one product, by id (prd_...) or SKU'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from product" -f -a "update" -d 'Change some fields of a product; the others stay as they are'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from product" -f -a "archive" -d 'Archive a product: hidden from the storefront and search, kept for order history'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from product" -f -a "delete" -d 'Delete a product for good; refused while orders or carts refer to it (archive it instead)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from product" -f -a "categories" -d 'List the category tree with the number of active products in and below each'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from product" -f -a "import" -d 'Create or update products in bulk from a JSON, NDJSON or CSV file, matched by SKU'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from product" -f -a "export" -d 'Write the catalog as NDJSON, JSON or CSV, in the form `product import` reads back'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from inventory" -f -a "list" -d 'List stock per SKU, lowest available first'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from inventory" -f -a "get" -d 'Show a SKU\'s stock, and with --history its latest movements'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from inventory" -f -a "set" -d 'Set the count on hand (a stocktake)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from inventory" -f -a "adjust" -d 'Add units to or take units from the count on hand'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from inventory" -f -a "reservations" -d 'List reservations, newest first, by SKU, status or reference'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from inventory" -f -a "reserve" -d 'Hold units of a SKU for a while (a cart, an order); they are not available meanwhile'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from inventory" -f -a "release" -d 'Give a reservation\'s units back'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from inventory" -f -a "commit" -d 'Turn a reservation into a sale: its units leave the count on hand'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from inventory" -f -a "low" -d 'List the SKUs at or below their low-stock threshold (same as list --low)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from inventory" -f -a "reconcile" -d 'Check that reserved counts match the active reservations and the ledger matches the counts on hand; exit 5 when they drift'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from fixtures" -f -a "load" -d 'Load users and products (with stock) from a fixtures file; safe to run again'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "list" -d 'List users, newest last; filter by role or by text in the email or name'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "get" -d 'Show one user, by id (usr_...) or email'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "create" -d 'Create a user with any role. The password is prompted for, or read from stdin'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "role" -d 'Change a user\'s role (admin, staff or customer). The last admin cannot be demoted'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "password" -d 'Change your own password: the current one, then the new one twice. Your other sessions end; this one stays signed in'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "verify" -d 'Prove your email address with the code from the welcome email; orders placed for the address without signing in then join your account'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "reset-password" -d 'A forgotten password: ask for a reset email with --email, then set a new password with the code it brings (--token; it works once, for 30 minutes). Every session of the account ends'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from cart" -f -a "show" -d 'Show the cart: its lines, subtotal, version and when it expires'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from cart" -f -a "add" -d 'Add units of a SKU, to its line if the cart has one; makes the cart on first use'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from cart" -f -a "update" -d 'Set a line\'s quantity; 0 removes the line'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from cart" -f -a "remove" -d 'Remove a SKU\'s line'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from cart" -f -a "clear" -d 'Remove every line; the cart itself stays'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "create" -d 'Place an order from --item lines or a cart, and with --pay pay it at once; `order create -` places one order per NDJSON line of stdin'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "quote" -d 'Price an order without placing it: subtotal, discounts, shipping, tax and total, and the shipping methods for the address'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "list" -d 'List orders, newest first, by status, payment (financial status), customer and date'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "get" -d 'Show one order with its items and status history'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "pay" -d 'Pay a pending order (one whose payment was declined, or that was placed without --pay)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "ship" -d 'Ship a paid order, all that is left of it or some --item units, or many orders from a CSV file (--from-file) (staff); one refunded in full is refused (exit 5)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "deliver" -d 'Mark a shipped order delivered (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "cancel" -d 'Cancel a pending order (its stock is released) or a paid one (staff: what is left of its payment is refunded to the customer and its items are restocked)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "refund" -d 'Refund an order\'s payment, all that is left of it or --amount (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "analytics" -d 'Orders by status, revenue by day, average order value and best sellers (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "invoice" -d 'Print an order\'s invoice (HTML, or --pdf); its number is issued the first time'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from order" -f -a "packing-slip" -d 'Print an order\'s packing slip: what is left to pack and where it goes (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from return" -f -a "create" -d 'Open a return of shipped units of an order, each with a reason'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from return" -f -a "list" -d 'List returns, newest first: your own, or all for staff'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from return" -f -a "get" -d 'Show one return'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from return" -f -a "approve" -d 'Approve a requested return (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from return" -f -a "reject" -d 'Reject a requested return (staff); its units may be returned again'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from return" -f -a "receive" -d 'Record an approved return as arrived (staff): its units go back on hand'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from return" -f -a "refund" -d 'Refund a received return through its order\'s payment (staff): what its items were charged, and with --include-shipping the order\'s shipping too'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from payment" -f -a "list" -d 'List payment attempts, newest first, by status, order and method'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from payment" -f -a "get" -d 'Show one payment with its refunds'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from payment" -f -a "refund" -d 'Refund a payment, all that is left of it or --amount'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from payment" -f -a "settle" -d 'Mark a pending bank transfer as received: the payment succeeds and its order is paid'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from payment" -f -a "analytics" -d 'Attempts, success and refund rates, volume per currency and counts per method'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "list" -d 'List notifications, newest first, filtered by status, channel, template, recipient or priority'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "get" -d 'Show one notification: its rendered text and every delivery attempt'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "send" -d 'Queue a notification from a template'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "resend" -d 'Send a failed or dead notification again (a sent one is copied into a new notification)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "templates" -d 'List every template: the built-ins and the user-defined ones'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "template" -d 'Add or show a user-defined template'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "analytics" -d 'Counts by channel and template and status, the median time to send, and the queue depth'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "deliveries" -d 'What the local sinks delivered (the channels with no provider configured), newest first'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from search" -f -a "suggest" -d 'Complete what has been typed, from product names and past searches, most popular first'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from search" -f -a "analytics" -d 'Top queries, queries that found nothing, and search volume (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from shipping" -f -a "zone" -d 'Shipping zones: countries shipped to alike, each with its methods and prices'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from address" -f -a "list" -d 'List the saved addresses, oldest first'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from address" -f -a "add" -d 'Save an address (at most 20); checked as a checkout checks one'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from address" -f -a "delete" -d 'Delete a saved address (orders that used it keep their copy)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from tax" -f -a "rate" -d 'Tax rates by country and region'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from discount" -f -a "add" -d 'Add a discount code, or with --automatic a promotion every order that qualifies gets'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from discount" -f -a "list" -d 'List discounts with how often each was used'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from discount" -f -a "get" -d 'Show one discount, by id (dsc_...) or code'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from discount" -f -a "disable" -d 'Disable a discount: no order gets it any more'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from customer" -f -a "list" -d 'List buyers, newest first; search by email or name'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from customer" -f -a "get" -d 'One buyer by email, with what they spent in each currency'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from report" -f -a "sales" -d 'Sales per period and currency; an order counts on the UTC day it was placed, once money was taken for it, net of what was refunded'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from document" -f -a "templates" -d 'List the document templates, and whether each is the shop\'s own or the built-in one'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from document" -f -a "template" -d 'Show, replace or reset one document\'s template'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "create" -d 'Make a key; its secret is printed once, so store it at once'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "list" -d 'List keys (yours; an admin sees everyone\'s). Secrets are never shown'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "revoke" -d 'Revoke a key: it stops working at once'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from webhook" -f -a "add" -d 'Add an endpoint; prints its signing secret (whsec_...), shown only this once'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from webhook" -f -a "list" -d 'List the endpoints'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from webhook" -f -a "get" -d 'Show one endpoint (without its secret)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from webhook" -f -a "deliveries" -d 'List an endpoint\'s deliveries, newest first: status, attempts, last answer'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from webhook" -f -a "replay" -d 'Deliver one delivery again (same webhook-id), or with --since every failed or dead delivery created since a time'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from webhook" -f -a "test" -d 'Send a webhook.test event to the endpoint (watch it with `shop webhook deliveries`)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from webhook" -f -a "rotate-secret" -d 'Make a new signing secret and print it; the old one keeps signing for the server\'s overlap (24 h by default), so receivers can switch without a gap'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from webhook" -f -a "remove" -d 'Remove an endpoint and its delivery log'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "backup" -d 'Copy the SQLite database while the server runs: one consistent snapshot, online'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "copy" -d 'Copy the SQLite database into an empty PostgreSQL database, to move to several nodes'
