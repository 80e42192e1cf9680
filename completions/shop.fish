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
complete -c shop -n "__fish_shop_needs_command" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_needs_command" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_needs_command" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_needs_command" -f -a "user" -d 'Manage user accounts and roles (admin)'
complete -c shop -n "__fish_shop_needs_command" -f -a "notification" -d 'Send and track emails, SMS and push notifications; manage their templates (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "events" -d 'Print the event log as NDJSON, and with --follow stream new events as they happen (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "dashboard" -d 'Watch the server live in a terminal dashboard: service health, stock, orders and searches (staff)'
complete -c shop -n "__fish_shop_needs_command" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c shop -n "__fish_shop_needs_command" -f -a "man" -d 'Write man pages for shop and every subcommand into a directory'
complete -c shop -n "__fish_shop_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand serve" -l addr -d 'Address to listen on (port 0 picks a free port)' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l db -d 'SQLite database file [default: shop/shop.db under the XDG data dir]' -r -F
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
complete -c shop -n "__fish_shop_using_subcommand serve" -l durability -d '`process`: commits survive a crash or kill -9; `power`: also a power cut (an fsync per commit)' -r -f -a "process\t''
power\t''"
complete -c shop -n "__fish_shop_using_subcommand serve" -l sweep-interval -d 'How often sweepers remove expired sessions and idempotency keys' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand serve" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand serve" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand serve" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand serve" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand serve" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand login" -l email -d 'Account email [default: asked for, offering the profile\'s last one]' -r
complete -c shop -n "__fish_shop_using_subcommand login" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand login" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand login" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand login" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand logout" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand logout" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand logout" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand whoami" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand whoami" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand whoami" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand status" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand status" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand status" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -f -a "list" -d 'List users, newest last; filter by role or by text in the email or name'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -f -a "get" -d 'Show one user, by id (usr_...) or email'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -f -a "create" -d 'Create a user with any role. The password is prompted for, or read from stdin'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -f -a "role" -d 'Change a user\'s role (admin, staff or customer). The last admin cannot be demoted'
complete -c shop -n "__fish_shop_using_subcommand user; and not __fish_seen_subcommand_from list get create role help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l role -d 'Only users with this role: admin, staff or customer' -r -f -a "admin\t''
staff\t''
customer\t''"
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -s s -l search -d 'Only users whose email or name contains this text (case-insensitive)' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l limit -d 'Users per page' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l offset -d 'Users to skip' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from role" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "list" -d 'List users, newest last; filter by role or by text in the email or name'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one user, by id (usr_...) or email'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a user with any role. The password is prompted for, or read from stdin'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "role" -d 'Change a user\'s role (admin, staff or customer). The last admin cannot be demoted'
complete -c shop -n "__fish_shop_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and not __fish_seen_subcommand_from list get send resend templates template analytics deliveries help" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from send" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from resend" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from templates" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from template" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from analytics" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand notification; and __fish_seen_subcommand_from deliveries" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand events" -s t -l type -d 'Only these event types: exact (`order.paid`) or a prefix (`order.*`); repeat or separate with commas' -r
complete -c shop -n "__fish_shop_using_subcommand events" -l after -d 'Start after this event id [default: the start of the log]' -r
complete -c shop -n "__fish_shop_using_subcommand events" -l tail -d 'Only the last N events of the log (0: none, with --follow only new ones)' -r
complete -c shop -n "__fish_shop_using_subcommand events" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand events" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand events" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand events" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l refresh-ms -d 'How often to poll the server\'s health and metrics, in milliseconds (events arrive live regardless)' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
json\t'The server\'s JSON document, pretty-printed'
ndjson\t'One JSON object per line (the default when piped)'
csv\t'Comma-separated values with a header row of field names'
id\t'Only ids, one per line'"
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l idempotency-key -d 'Idempotency-Key sent with a mutating request, so that running the same command again with the same key cannot apply it twice [default: a new key per request]' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l timeout -d 'Longest wait for one answer from the server' -r
complete -c shop -n "__fish_shop_using_subcommand dashboard" -s q -l quiet -d 'Print only ids, one per line (same as -o id)'
complete -c shop -n "__fish_shop_using_subcommand dashboard" -l no-color -d 'No colours in tables (also off when NO_COLOR is set or output is piped)'
complete -c shop -n "__fish_shop_using_subcommand dashboard" -s v -l verbose -d 'Log every HTTP request and answer on stderr'
complete -c shop -n "__fish_shop_using_subcommand dashboard" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c shop -n "__fish_shop_using_subcommand dashboard" -s V -l version -d 'Print version'
complete -c shop -n "__fish_shop_using_subcommand completions" -l url -d 'Server to talk to [default: the profile\'s, else http://127.0.0.1:7467]' -r
complete -c shop -n "__fish_shop_using_subcommand completions" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand completions" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand completions" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand man" -l token -d 'Access token to use instead of the stored login [env: SHOP_TOKEN]' -r
complete -c shop -n "__fish_shop_using_subcommand man" -l profile -d 'Named server and login, for working with more than one server' -r
complete -c shop -n "__fish_shop_using_subcommand man" -s o -l output -d 'Output format [default: table on a terminal, ndjson when piped]' -r -f -a "table\t'An aligned table (the default on a terminal)'
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
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "serve" -d 'Run the shop server: every service behind one HTTP gateway, on an embedded SQLite database'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "login" -d 'Log in to a shop server and keep the login for later commands'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "logout" -d 'End the stored login: revoke its session on the server and forget its tokens'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "whoami" -d 'Show who the current login is, on which server, and until when'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "status" -d 'Show the health of every service; exit 3 when the server is unreachable or a service is down'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "user" -d 'Manage user accounts and roles (admin)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "notification" -d 'Send and track emails, SMS and push notifications; manage their templates (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "events" -d 'Print the event log as NDJSON, and with --follow stream new events as they happen (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "dashboard" -d 'Watch the server live in a terminal dashboard: service health, stock, orders and searches (staff)'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "man" -d 'Write man pages for shop and every subcommand into a directory'
complete -c shop -n "__fish_shop_using_subcommand help; and not __fish_seen_subcommand_from serve login logout whoami status user notification events dashboard completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "list" -d 'List users, newest last; filter by role or by text in the email or name'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "get" -d 'Show one user, by id (usr_...) or email'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "create" -d 'Create a user with any role. The password is prompted for, or read from stdin'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "role" -d 'Change a user\'s role (admin, staff or customer). The last admin cannot be demoted'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "list" -d 'List notifications, newest first, filtered by status, channel, template, recipient or priority'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "get" -d 'Show one notification: its rendered text and every delivery attempt'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "send" -d 'Queue a notification from a template'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "resend" -d 'Send a failed or dead notification again (a sent one is copied into a new notification)'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "templates" -d 'List every template: the built-ins and the user-defined ones'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "template" -d 'Add or show a user-defined template'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "analytics" -d 'Counts by channel and template and status, the median time to send, and the queue depth'
complete -c shop -n "__fish_shop_using_subcommand help; and __fish_seen_subcommand_from notification" -f -a "deliveries" -d 'What the local sinks delivered (the channels with no provider configured), newest first'
