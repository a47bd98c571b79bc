# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_smq_global_optspecs
    string join \n help version
end

function __fish_smq_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_smq_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_smq_using_subcommand
    set -l cmd (__fish_smq_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c smq -n "__fish_smq_needs_command" -l help -d 'Print help'
complete -c smq -n "__fish_smq_needs_command" -l version -d 'Print the version'
complete -c smq -n "__fish_smq_needs_command" -f -a "pub" -d 'Publish messages, as mosquitto_pub'
complete -c smq -n "__fish_smq_needs_command" -f -a "sub" -d 'Subscribe and print messages, as mosquitto_sub'
complete -c smq -n "__fish_smq_needs_command" -f -a "rr" -d 'Publish a request and print the response, as mosquitto_rr'
complete -c smq -n "__fish_smq_needs_command" -f -a "record" -d 'Record messages to a CSV or JSONL file'
complete -c smq -n "__fish_smq_needs_command" -f -a "replay" -d 'Publish a recorded file again, with its original timing'
complete -c smq -n "__fish_smq_needs_command" -f -a "bench" -d 'Load-test a broker: connections, publishers, subscribers, end-to-end latency'
complete -c smq -n "__fish_smq_needs_command" -f -a "serve-broker" -d 'Run an MQTT 3.1.1 and 5 broker (TCP, TLS, WebSocket)'
complete -c smq -n "__fish_smq_needs_command" -f -a "passwd" -d 'Add, change or delete a user in a mosquitto_passwd password file'
complete -c smq -n "__fish_smq_needs_command" -f -a "certs" -d 'Make a lab CA and v3 server and client certificates, and print the flags that use them'
complete -c smq -n "__fish_smq_needs_command" -f -a "generate" -d 'Write shell completions and man pages'
complete -c smq -n "__fish_smq_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smq -n "__fish_smq_using_subcommand pub" -s t -l topic -d 'Topic to publish to (no wildcards); may come from -L instead' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s m -l message -d 'Send this argument as the payload' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s f -l file -d 'Send the whole file as one payload (binary-safe)' -r -F
complete -c smq -n "__fish_smq_using_subcommand pub" -s q -l qos -d 'Quality of service for every message' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l repeat -d 'Publish the -m/-f/-s payload N times' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l repeat-delay -d 'Seconds (fractions allowed) to wait after each message is delivered before the next' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l line-topic-sep -d 'With -l: each line is TOPIC<SEP>PAYLOAD (SEP may be an escape such as \'\\t\')' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l rate -d 'Publish at most N messages per second' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l max-buffer -d 'With -l: how much input to hold while reconnecting before reading stops (k, M suffixes)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s o -d 'Read default options from FILE instead of $XDG_CONFIG_HOME/mosquitto_pub (_sub, _rr; else ~/.config/...): one option per line, the command line wins' -r -F
complete -c smq -n "__fish_smq_using_subcommand pub" -l profile -d 'Connection settings from [profile.NAME] in $XDG_CONFIG_HOME/smq/config.toml (else ~/.config/smq/config.toml): host, port, TLS, username, pw-file; flags given here win' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s h -l host -d 'Broker host, or HOST:PORT ([::1]:1883 for IPv6) [default: localhost]; repeat -h or -L to name brokers to fail over to, tried in the order given (-h is --host, as in mosquitto: help is --help)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s p -l port -d 'Broker port, for brokers named without one [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s L -l url -d 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic (repeatable, as -h)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l connect-retry -d 'Keep trying the first connection for SECS seconds when no broker answers' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l ack-timeout -d 'Seconds the broker may take to acknowledge a message or subscription' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l ws-path -d 'WebSocket path' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l ws-header -d 'Extra WebSocket handshake header \'Name: value\' (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l unix -d 'Connect through a Unix domain socket instead of TCP' -r -F
complete -c smq -n "__fish_smq_using_subcommand pub" -s A -d 'Bind the outgoing socket to this local address' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s V -l protocol-version -d 'MQTT protocol version: auto tries mqttv5, then mqttv311 if the broker refuses it [default: auto]' -r -f -a "auto\t'MQTT 5, then 3.1.1 if the broker does not speak 5'
mqttv311\t''
mqttv5\t''
mqttv31\t''"
complete -c smq -n "__fish_smq_using_subcommand pub" -s i -l id -d 'Client id [default: empty, the broker assigns one]' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s I -l id-prefix -d 'Client id prefix; the process id is appended' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s k -l keepalive -d 'Keep-alive seconds; 0 turns keep-alive off' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s x -l session-expiry -d 'MQTT 5 session expiry seconds; -1 or ∞ never expires' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s u -l username -d 'Username' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s P -l pw -d 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l pw-file -d 'Read the password from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand pub" -s M -l max-inflight -d 'Maximum QoS 1/2 messages in flight' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l will-topic -d 'Topic of the Will (no wildcards)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l will-payload -d 'Will payload' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l will-qos -d 'Will QoS' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s D -l property -d 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l cafile -d 'Trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand pub" -l capath -d 'Directory of trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand pub" -l cert -d 'Client certificate (PEM)' -r -F
complete -c smq -n "__fish_smq_using_subcommand pub" -l key -d 'Client private key (PEM; an encrypted one asks for its passphrase, or takes it from SMQ_KEY_PASSWORD or --key-pw-file)' -r -F
complete -c smq -n "__fish_smq_using_subcommand pub" -l key-pw-file -d 'Read the --key passphrase from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand pub" -l tls-version -d 'Lowest TLS version: tlsv1.2 or tlsv1.3' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l tls-alpn -d 'ALPN protocol to offer (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l servername -d 'Name to send as SNI and to verify the certificate against [default: the host]' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l ciphers -d 'Cipher suites, by IANA name, separated by \':\'' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l keyform -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l tls-engine -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l tls-engine-kpass-sha1 -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l psk -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -l psk-identity -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand pub" -s s -l stdin-file -d 'Send all of stdin as one payload'
complete -c smq -n "__fish_smq_using_subcommand pub" -s l -l stdin-line -d 'Send each line of stdin as its own message, as lines arrive'
complete -c smq -n "__fish_smq_using_subcommand pub" -s n -l null-message -d 'Send a zero-length payload (with -r: clear the retained message)'
complete -c smq -n "__fish_smq_using_subcommand pub" -s r -l retain -d 'Set the retain flag'
complete -c smq -n "__fish_smq_using_subcommand pub" -l send-empty -d 'With -l: send empty lines as zero-length messages instead of skipping them'
complete -c smq -n "__fish_smq_using_subcommand pub" -l no-reconnect -d 'Exit when the connection drops instead of reconnecting and resending'
complete -c smq -n "__fish_smq_using_subcommand pub" -l no-options-file -d 'Read no options file'
complete -c smq -n "__fish_smq_using_subcommand pub" -l ws -d 'Connect over WebSocket'
complete -c smq -n "__fish_smq_using_subcommand pub" -s c -l disable-clean-session -d 'Keep the session when disconnected (needs -i)'
complete -c smq -n "__fish_smq_using_subcommand pub" -l pw-prompt -d 'Ask for the password on the terminal'
complete -c smq -n "__fish_smq_using_subcommand pub" -l will-retain -d 'Retain the Will'
complete -c smq -n "__fish_smq_using_subcommand pub" -l nodelay -d 'Set TCP_NODELAY'
complete -c smq -n "__fish_smq_using_subcommand pub" -s d -l debug -d 'Trace every packet on stderr'
complete -c smq -n "__fish_smq_using_subcommand pub" -l quiet -d 'Print no error messages'
complete -c smq -n "__fish_smq_using_subcommand pub" -l tls-use-os-certs -d 'Trust the operating system\'s CA store; turns TLS on'
complete -c smq -n "__fish_smq_using_subcommand pub" -l insecure -d 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic'
complete -c smq -n "__fish_smq_using_subcommand pub" -l no-tls -d 'Turn TLS off, even with -p 8883 or a CA option'
complete -c smq -n "__fish_smq_using_subcommand pub" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand sub" -s t -l topic -d 'Topic filter to subscribe to (repeatable; + and # wildcards); may come from -L' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s T -l filter-out -d 'Don\'t print messages whose topic matches FILTER (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l share -d 'Join the shared subscription GROUP: each filter becomes $share/GROUP/FILTER, so the processes on one GROUP split the messages between them (a unique -i unless given)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s U -l unsubscribe -d 'Unsubscribe from FILTER, e.g. to clean up a persistent session (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s q -l qos -d 'Requested QoS for every filter' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s C -d 'Exit after N messages' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s W -d 'Give up after SECS seconds: prints "Timed out" and exits 27' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s F -d 'Output format, mosquitto_sub\'s language; overrides -v' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l random-filter -d 'Print about PCT percent of messages (0.1-100)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l retain-handling -d 'MQTT 5: when the broker sends retained messages' -r -f -a "always\t'Send retained messages on every subscribe (0)'
new\t'Only on a new subscription (1)'
never\t'Never (2)'"
complete -c smq -n "__fish_smq_using_subcommand sub" -l idle-timeout -d 'Exit when nothing has arrived for SECS seconds' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l grep -d 'Print only messages whose payload matches REGEX' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l listen -d 'With --serve: the broker\'s listener URL (repeatable) [default: mqtt://127.0.0.1:1883 and ws://127.0.0.1:8000]' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l http-path -d 'Only this request path takes pushes, e.g. /data [default: any path]' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l http-topic -d 'Topic for pushed messages; {deviceId}, {sessionId} and {path} are filled in per request' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l http-qos -d 'QoS of the published messages' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l http-token -d 'Require `Authorization: TOKEN` or `Authorization: Bearer TOKEN` on every push' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l http-max-body -d 'Largest request body, also after gzip decoding (suffixes k, M, KiB, MiB)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s o -d 'Read default options from FILE instead of $XDG_CONFIG_HOME/mosquitto_pub (_sub, _rr; else ~/.config/...): one option per line, the command line wins' -r -F
complete -c smq -n "__fish_smq_using_subcommand sub" -l profile -d 'Connection settings from [profile.NAME] in $XDG_CONFIG_HOME/smq/config.toml (else ~/.config/smq/config.toml): host, port, TLS, username, pw-file; flags given here win' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s h -l host -d 'Broker host, or HOST:PORT ([::1]:1883 for IPv6) [default: localhost]; repeat -h or -L to name brokers to fail over to, tried in the order given (-h is --host, as in mosquitto: help is --help)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s p -l port -d 'Broker port, for brokers named without one [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s L -l url -d 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic (repeatable, as -h)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l connect-retry -d 'Keep trying the first connection for SECS seconds when no broker answers' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l ack-timeout -d 'Seconds the broker may take to acknowledge a message or subscription' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l ws-path -d 'WebSocket path' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l ws-header -d 'Extra WebSocket handshake header \'Name: value\' (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l unix -d 'Connect through a Unix domain socket instead of TCP' -r -F
complete -c smq -n "__fish_smq_using_subcommand sub" -s A -d 'Bind the outgoing socket to this local address' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s V -l protocol-version -d 'MQTT protocol version: auto tries mqttv5, then mqttv311 if the broker refuses it [default: auto]' -r -f -a "auto\t'MQTT 5, then 3.1.1 if the broker does not speak 5'
mqttv311\t''
mqttv5\t''
mqttv31\t''"
complete -c smq -n "__fish_smq_using_subcommand sub" -s i -l id -d 'Client id [default: empty, the broker assigns one]' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s I -l id-prefix -d 'Client id prefix; the process id is appended' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s k -l keepalive -d 'Keep-alive seconds; 0 turns keep-alive off' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s x -l session-expiry -d 'MQTT 5 session expiry seconds; -1 or ∞ never expires' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s u -l username -d 'Username' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s P -l pw -d 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l pw-file -d 'Read the password from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand sub" -s M -l max-inflight -d 'Maximum QoS 1/2 messages in flight' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l will-topic -d 'Topic of the Will (no wildcards)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l will-payload -d 'Will payload' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l will-qos -d 'Will QoS' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s D -l property -d 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l cafile -d 'Trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand sub" -l capath -d 'Directory of trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand sub" -l cert -d 'Client certificate (PEM)' -r -F
complete -c smq -n "__fish_smq_using_subcommand sub" -l key -d 'Client private key (PEM; an encrypted one asks for its passphrase, or takes it from SMQ_KEY_PASSWORD or --key-pw-file)' -r -F
complete -c smq -n "__fish_smq_using_subcommand sub" -l key-pw-file -d 'Read the --key passphrase from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand sub" -l tls-version -d 'Lowest TLS version: tlsv1.2 or tlsv1.3' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l tls-alpn -d 'ALPN protocol to offer (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l servername -d 'Name to send as SNI and to verify the certificate against [default: the host]' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l ciphers -d 'Cipher suites, by IANA name, separated by \':\'' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l keyform -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l tls-engine -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l tls-engine-kpass-sha1 -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l psk -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -l psk-identity -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand sub" -s E -d 'Exit once every subscription is acknowledged'
complete -c smq -n "__fish_smq_using_subcommand sub" -s R -d 'Don\'t print retained (stale) messages; in MQTT 5 the broker is asked not to send them'
complete -c smq -n "__fish_smq_using_subcommand sub" -l retained-only -d 'Print only retained messages; exit at the first message that is not retained'
complete -c smq -n "__fish_smq_using_subcommand sub" -l remove-retained -d 'Clear every retained message received (respects -T)'
complete -c smq -n "__fish_smq_using_subcommand sub" -s v -l verbose -d 'Print the topic before each payload'
complete -c smq -n "__fish_smq_using_subcommand sub" -s N -d 'No newline after each message'
complete -c smq -n "__fish_smq_using_subcommand sub" -l pretty -d 'Multi-line JSON for %j and %J'
complete -c smq -n "__fish_smq_using_subcommand sub" -l retain-as-published -d 'MQTT 5: keep the retain flag as published'
complete -c smq -n "__fish_smq_using_subcommand sub" -l no-local -d 'MQTT 5: don\'t receive our own publishes'
complete -c smq -n "__fish_smq_using_subcommand sub" -l json -d 'One JSON object per line: topic, payload (or payload_b64), qos, retain, time, properties'
complete -c smq -n "__fish_smq_using_subcommand sub" -l changed-only -d 'Print a message only when its payload differs from the last one on its topic'
complete -c smq -n "__fish_smq_using_subcommand sub" -l stats -d 'Instead of payloads: a live per-topic table on stderr, and a summary on exit'
complete -c smq -n "__fish_smq_using_subcommand sub" -l no-reconnect -d 'Exit when the connection drops instead of reconnecting'
complete -c smq -n "__fish_smq_using_subcommand sub" -l serve -d 'Also run the embedded broker in this process, and connect to it'
complete -c smq -n "__fish_smq_using_subcommand sub" -l allow-anonymous -d 'With --serve: let anyone who reaches a non-loopback --listen in, with no password'
complete -c smq -n "__fish_smq_using_subcommand sub" -l http -d 'Also accept HTTP on the ws:// port: a POSTed JSON body is published into the broker'
complete -c smq -n "__fish_smq_using_subcommand sub" -l split -d 'Publish each Sensor Logger reading on TOPIC/{deviceId}/{sensor} instead of the whole batch'
complete -c smq -n "__fish_smq_using_subcommand sub" -l no-options-file -d 'Read no options file'
complete -c smq -n "__fish_smq_using_subcommand sub" -l ws -d 'Connect over WebSocket'
complete -c smq -n "__fish_smq_using_subcommand sub" -s c -l disable-clean-session -d 'Keep the session when disconnected (needs -i)'
complete -c smq -n "__fish_smq_using_subcommand sub" -l pw-prompt -d 'Ask for the password on the terminal'
complete -c smq -n "__fish_smq_using_subcommand sub" -l will-retain -d 'Retain the Will'
complete -c smq -n "__fish_smq_using_subcommand sub" -l nodelay -d 'Set TCP_NODELAY'
complete -c smq -n "__fish_smq_using_subcommand sub" -s d -l debug -d 'Trace every packet on stderr'
complete -c smq -n "__fish_smq_using_subcommand sub" -l quiet -d 'Print no error messages'
complete -c smq -n "__fish_smq_using_subcommand sub" -l tls-use-os-certs -d 'Trust the operating system\'s CA store; turns TLS on'
complete -c smq -n "__fish_smq_using_subcommand sub" -l insecure -d 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic'
complete -c smq -n "__fish_smq_using_subcommand sub" -l no-tls -d 'Turn TLS off, even with -p 8883 or a CA option'
complete -c smq -n "__fish_smq_using_subcommand sub" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand rr" -s t -l topic -d 'Topic the request is published to (no wildcards); may come from -L' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s e -d 'Response topic: subscribed to before the request goes out, and sent as its MQTT 5 response topic' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s m -l message -d 'Send this argument as the request' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s f -l file -d 'Send the whole file as the request (binary-safe)' -r -F
complete -c smq -n "__fish_smq_using_subcommand rr" -s q -l qos -d 'QoS of the request and of the subscription to the response topic' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s C -d 'Wait for N responses, then exit' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s W -d 'Give up after SECS seconds without every response: prints "Timed out" and exits 27' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s F -d 'Output format, mosquitto_sub\'s language; overrides -v' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s o -d 'Read default options from FILE instead of $XDG_CONFIG_HOME/mosquitto_pub (_sub, _rr; else ~/.config/...): one option per line, the command line wins' -r -F
complete -c smq -n "__fish_smq_using_subcommand rr" -l profile -d 'Connection settings from [profile.NAME] in $XDG_CONFIG_HOME/smq/config.toml (else ~/.config/smq/config.toml): host, port, TLS, username, pw-file; flags given here win' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s h -l host -d 'Broker host, or HOST:PORT ([::1]:1883 for IPv6) [default: localhost]; repeat -h or -L to name brokers to fail over to, tried in the order given (-h is --host, as in mosquitto: help is --help)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s p -l port -d 'Broker port, for brokers named without one [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s L -l url -d 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic (repeatable, as -h)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l connect-retry -d 'Keep trying the first connection for SECS seconds when no broker answers' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l ack-timeout -d 'Seconds the broker may take to acknowledge a message or subscription' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l ws-path -d 'WebSocket path' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l ws-header -d 'Extra WebSocket handshake header \'Name: value\' (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l unix -d 'Connect through a Unix domain socket instead of TCP' -r -F
complete -c smq -n "__fish_smq_using_subcommand rr" -s A -d 'Bind the outgoing socket to this local address' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s V -l protocol-version -d 'MQTT protocol version: auto tries mqttv5, then mqttv311 if the broker refuses it [default: auto]' -r -f -a "auto\t'MQTT 5, then 3.1.1 if the broker does not speak 5'
mqttv311\t''
mqttv5\t''
mqttv31\t''"
complete -c smq -n "__fish_smq_using_subcommand rr" -s i -l id -d 'Client id [default: empty, the broker assigns one]' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s I -l id-prefix -d 'Client id prefix; the process id is appended' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s k -l keepalive -d 'Keep-alive seconds; 0 turns keep-alive off' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s x -l session-expiry -d 'MQTT 5 session expiry seconds; -1 or ∞ never expires' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s u -l username -d 'Username' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s P -l pw -d 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l pw-file -d 'Read the password from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand rr" -s M -l max-inflight -d 'Maximum QoS 1/2 messages in flight' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l will-topic -d 'Topic of the Will (no wildcards)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l will-payload -d 'Will payload' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l will-qos -d 'Will QoS' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s D -l property -d 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l cafile -d 'Trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand rr" -l capath -d 'Directory of trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand rr" -l cert -d 'Client certificate (PEM)' -r -F
complete -c smq -n "__fish_smq_using_subcommand rr" -l key -d 'Client private key (PEM; an encrypted one asks for its passphrase, or takes it from SMQ_KEY_PASSWORD or --key-pw-file)' -r -F
complete -c smq -n "__fish_smq_using_subcommand rr" -l key-pw-file -d 'Read the --key passphrase from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand rr" -l tls-version -d 'Lowest TLS version: tlsv1.2 or tlsv1.3' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l tls-alpn -d 'ALPN protocol to offer (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l servername -d 'Name to send as SNI and to verify the certificate against [default: the host]' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l ciphers -d 'Cipher suites, by IANA name, separated by \':\'' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l keyform -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l tls-engine -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l tls-engine-kpass-sha1 -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l psk -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -l psk-identity -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand rr" -s s -l stdin-file -d 'Send all of stdin as the request'
complete -c smq -n "__fish_smq_using_subcommand rr" -s n -l null-message -d 'Send a zero-length request'
complete -c smq -n "__fish_smq_using_subcommand rr" -s R -d 'Don\'t print retained (stale) responses'
complete -c smq -n "__fish_smq_using_subcommand rr" -s v -l verbose -d 'Print the topic before each response'
complete -c smq -n "__fish_smq_using_subcommand rr" -s N -d 'No newline after each response'
complete -c smq -n "__fish_smq_using_subcommand rr" -l pretty -d 'Multi-line JSON for %j and %J'
complete -c smq -n "__fish_smq_using_subcommand rr" -l no-options-file -d 'Read no options file'
complete -c smq -n "__fish_smq_using_subcommand rr" -l ws -d 'Connect over WebSocket'
complete -c smq -n "__fish_smq_using_subcommand rr" -s c -l disable-clean-session -d 'Keep the session when disconnected (needs -i)'
complete -c smq -n "__fish_smq_using_subcommand rr" -l pw-prompt -d 'Ask for the password on the terminal'
complete -c smq -n "__fish_smq_using_subcommand rr" -l will-retain -d 'Retain the Will'
complete -c smq -n "__fish_smq_using_subcommand rr" -l nodelay -d 'Set TCP_NODELAY'
complete -c smq -n "__fish_smq_using_subcommand rr" -s d -l debug -d 'Trace every packet on stderr'
complete -c smq -n "__fish_smq_using_subcommand rr" -l quiet -d 'Print no error messages'
complete -c smq -n "__fish_smq_using_subcommand rr" -l tls-use-os-certs -d 'Trust the operating system\'s CA store; turns TLS on'
complete -c smq -n "__fish_smq_using_subcommand rr" -l insecure -d 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic'
complete -c smq -n "__fish_smq_using_subcommand rr" -l no-tls -d 'Turn TLS off, even with -p 8883 or a CA option'
complete -c smq -n "__fish_smq_using_subcommand rr" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand record" -s t -l topic -d 'Topic filter to record (repeatable); may come from -L' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l share -d 'Join the shared subscription GROUP: each filter becomes $share/GROUP/FILTER, so the recorders on one GROUP split the messages between them (a unique -i unless given)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s o -l output -d 'Output file; - is stdout' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l layout -d 'What a row is: readings (one per reading field), messages (lossless, what replay reads) or wide (one CSV per sensor, with --out-dir)' -r -f -a "readings\t'One row per reading field (long, tidy)'
messages\t'One row per MQTT message, lossless: what replay reads'
wide\t'One CSV per device, session and sensor, in Sensor Logger\'s export columns (--out-dir)'"
complete -c smq -n "__fish_smq_using_subcommand record" -l format -d 'File format of the messages layout' -r -f -a "csv\t''
jsonl\t''"
complete -c smq -n "__fish_smq_using_subcommand record" -l raw -d 'Also write a lossless messages log (CSV) to FILE' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l rotate -d 'Start a new -o/--raw file each UTC hour or day, or after N rows or N bytes (size:10M): FILE-2026-11-22T03.csv, FILE-0001.csv, ...' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l out-dir -d 'With --layout wide: the directory for DEVICE/SESSION/Sensor.csv files' -r -F
complete -c smq -n "__fish_smq_using_subcommand record" -l decode -d 'Payload decoder: auto, sensorlogger, thingflow, thingspeak, istsos, number, json, raw; FILTER=DECODER sets it for the topics FILTER matches (repeatable) [default: auto]' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s q -l qos -d 'Requested QoS (2 records what was published, as published)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s C -d 'Stop after N messages' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s W -d 'Give up after SECS seconds: exits 27' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l duration -d 'Stop (exit 0) after SECS seconds' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l listen -d 'With --serve: the broker\'s listener URL (repeatable) [default: mqtt://127.0.0.1:1883 and ws://127.0.0.1:8000]' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l http-path -d 'Only this request path takes pushes, e.g. /data [default: any path]' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l http-topic -d 'Topic for pushed messages; {deviceId}, {sessionId} and {path} are filled in per request' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l http-qos -d 'QoS of the published messages' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l http-token -d 'Require `Authorization: TOKEN` or `Authorization: Bearer TOKEN` on every push' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l http-max-body -d 'Largest request body, also after gzip decoding (suffixes k, M, KiB, MiB)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l profile -d 'Connection settings from [profile.NAME] in $XDG_CONFIG_HOME/smq/config.toml (else ~/.config/smq/config.toml): host, port, TLS, username, pw-file; flags given here win' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s h -l host -d 'Broker host, or HOST:PORT ([::1]:1883 for IPv6) [default: localhost]; repeat -h or -L to name brokers to fail over to, tried in the order given (-h is --host, as in mosquitto: help is --help)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s p -l port -d 'Broker port, for brokers named without one [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s L -l url -d 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic (repeatable, as -h)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l connect-retry -d 'Keep trying the first connection for SECS seconds when no broker answers' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l ack-timeout -d 'Seconds the broker may take to acknowledge a message or subscription' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l ws-path -d 'WebSocket path' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l ws-header -d 'Extra WebSocket handshake header \'Name: value\' (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l unix -d 'Connect through a Unix domain socket instead of TCP' -r -F
complete -c smq -n "__fish_smq_using_subcommand record" -s A -d 'Bind the outgoing socket to this local address' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s V -l protocol-version -d 'MQTT protocol version: auto tries mqttv5, then mqttv311 if the broker refuses it [default: auto]' -r -f -a "auto\t'MQTT 5, then 3.1.1 if the broker does not speak 5'
mqttv311\t''
mqttv5\t''
mqttv31\t''"
complete -c smq -n "__fish_smq_using_subcommand record" -s i -l id -d 'Client id [default: empty, the broker assigns one]' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s I -l id-prefix -d 'Client id prefix; the process id is appended' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s k -l keepalive -d 'Keep-alive seconds; 0 turns keep-alive off' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s x -l session-expiry -d 'MQTT 5 session expiry seconds; -1 or ∞ never expires' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s u -l username -d 'Username' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s P -l pw -d 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l pw-file -d 'Read the password from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand record" -s M -l max-inflight -d 'Maximum QoS 1/2 messages in flight' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l will-topic -d 'Topic of the Will (no wildcards)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l will-payload -d 'Will payload' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l will-qos -d 'Will QoS' -r
complete -c smq -n "__fish_smq_using_subcommand record" -s D -l property -d 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l cafile -d 'Trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand record" -l capath -d 'Directory of trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand record" -l cert -d 'Client certificate (PEM)' -r -F
complete -c smq -n "__fish_smq_using_subcommand record" -l key -d 'Client private key (PEM; an encrypted one asks for its passphrase, or takes it from SMQ_KEY_PASSWORD or --key-pw-file)' -r -F
complete -c smq -n "__fish_smq_using_subcommand record" -l key-pw-file -d 'Read the --key passphrase from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand record" -l tls-version -d 'Lowest TLS version: tlsv1.2 or tlsv1.3' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l tls-alpn -d 'ALPN protocol to offer (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l servername -d 'Name to send as SNI and to verify the certificate against [default: the host]' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l ciphers -d 'Cipher suites, by IANA name, separated by \':\'' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l keyform -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l tls-engine -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l tls-engine-kpass-sha1 -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l psk -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l psk-identity -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand record" -l flat -d 'With --layout wide: DIR/DEVICE_SESSION_Sensor.csv instead of subdirectories'
complete -c smq -n "__fish_smq_using_subcommand record" -l with-recv-time -d 'With --layout wide: append smq\'s receive time as a last column'
complete -c smq -n "__fish_smq_using_subcommand record" -l keep-test -d 'Keep readings named `test` (Sensor Logger\'s "Tap to Test")'
complete -c smq -n "__fish_smq_using_subcommand record" -l keep-blobs -d 'Keep camera images instead of their byte count'
complete -c smq -n "__fish_smq_using_subcommand record" -l no-accuracy -d 'Drop the accuracy rows'
complete -c smq -n "__fish_smq_using_subcommand record" -l no-reconnect -d 'Exit when the connection drops instead of reconnecting'
complete -c smq -n "__fish_smq_using_subcommand record" -l serve -d 'Also run the embedded broker in this process, and connect to it'
complete -c smq -n "__fish_smq_using_subcommand record" -l allow-anonymous -d 'With --serve: let anyone who reaches a non-loopback --listen in, with no password'
complete -c smq -n "__fish_smq_using_subcommand record" -l http -d 'Also accept HTTP on the ws:// port: a POSTed JSON body is published into the broker'
complete -c smq -n "__fish_smq_using_subcommand record" -l split -d 'Publish each Sensor Logger reading on TOPIC/{deviceId}/{sensor} instead of the whole batch'
complete -c smq -n "__fish_smq_using_subcommand record" -l ws -d 'Connect over WebSocket'
complete -c smq -n "__fish_smq_using_subcommand record" -s c -l disable-clean-session -d 'Keep the session when disconnected (needs -i)'
complete -c smq -n "__fish_smq_using_subcommand record" -l pw-prompt -d 'Ask for the password on the terminal'
complete -c smq -n "__fish_smq_using_subcommand record" -l will-retain -d 'Retain the Will'
complete -c smq -n "__fish_smq_using_subcommand record" -l nodelay -d 'Set TCP_NODELAY'
complete -c smq -n "__fish_smq_using_subcommand record" -s d -l debug -d 'Trace every packet on stderr'
complete -c smq -n "__fish_smq_using_subcommand record" -l quiet -d 'Print no error messages'
complete -c smq -n "__fish_smq_using_subcommand record" -l tls-use-os-certs -d 'Trust the operating system\'s CA store; turns TLS on'
complete -c smq -n "__fish_smq_using_subcommand record" -l insecure -d 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic'
complete -c smq -n "__fish_smq_using_subcommand record" -l no-tls -d 'Turn TLS off, even with -p 8883 or a CA option'
complete -c smq -n "__fish_smq_using_subcommand record" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand replay" -l speed -d 'Play F times as fast (2 = twice as fast)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l loop -d 'Play the file N times (no N: forever)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l from -d 'Start at an offset from the first message (90, 90s, 1.5) or at a recorded time (RFC 3339)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l to -d 'Stop at an offset from the first message, or at a recorded time (RFC 3339)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l topic-prefix -d 'Put PREFIX before every topic' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l topic-map -d 'Publish messages recorded on topic FROM to topic TO instead (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l filter -d 'Replay only messages whose topic matches FILTER (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -s q -l qos -d 'Publish every message at this QoS instead of the recorded one' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l retain -d 'The retain flag: keep the recorded one, strip it, or force it on' -r -f -a "keep\t''
strip\t''
force\t''"
complete -c smq -n "__fish_smq_using_subcommand replay" -l limit -d 'Replay at most N messages (per pass)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l profile -d 'Connection settings from [profile.NAME] in $XDG_CONFIG_HOME/smq/config.toml (else ~/.config/smq/config.toml): host, port, TLS, username, pw-file; flags given here win' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -s h -l host -d 'Broker host, or HOST:PORT ([::1]:1883 for IPv6) [default: localhost]; repeat -h or -L to name brokers to fail over to, tried in the order given (-h is --host, as in mosquitto: help is --help)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -s p -l port -d 'Broker port, for brokers named without one [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -s L -l url -d 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic (repeatable, as -h)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l connect-retry -d 'Keep trying the first connection for SECS seconds when no broker answers' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l ack-timeout -d 'Seconds the broker may take to acknowledge a message or subscription' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l ws-path -d 'WebSocket path' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l ws-header -d 'Extra WebSocket handshake header \'Name: value\' (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l unix -d 'Connect through a Unix domain socket instead of TCP' -r -F
complete -c smq -n "__fish_smq_using_subcommand replay" -s A -d 'Bind the outgoing socket to this local address' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -s V -l protocol-version -d 'MQTT protocol version: auto tries mqttv5, then mqttv311 if the broker refuses it [default: auto]' -r -f -a "auto\t'MQTT 5, then 3.1.1 if the broker does not speak 5'
mqttv311\t''
mqttv5\t''
mqttv31\t''"
complete -c smq -n "__fish_smq_using_subcommand replay" -s i -l id -d 'Client id [default: empty, the broker assigns one]' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -s I -l id-prefix -d 'Client id prefix; the process id is appended' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -s k -l keepalive -d 'Keep-alive seconds; 0 turns keep-alive off' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -s x -l session-expiry -d 'MQTT 5 session expiry seconds; -1 or ∞ never expires' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -s u -l username -d 'Username' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -s P -l pw -d 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l pw-file -d 'Read the password from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand replay" -s M -l max-inflight -d 'Maximum QoS 1/2 messages in flight' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l will-topic -d 'Topic of the Will (no wildcards)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l will-payload -d 'Will payload' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l will-qos -d 'Will QoS' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -s D -l property -d 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l cafile -d 'Trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand replay" -l capath -d 'Directory of trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand replay" -l cert -d 'Client certificate (PEM)' -r -F
complete -c smq -n "__fish_smq_using_subcommand replay" -l key -d 'Client private key (PEM; an encrypted one asks for its passphrase, or takes it from SMQ_KEY_PASSWORD or --key-pw-file)' -r -F
complete -c smq -n "__fish_smq_using_subcommand replay" -l key-pw-file -d 'Read the --key passphrase from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand replay" -l tls-version -d 'Lowest TLS version: tlsv1.2 or tlsv1.3' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l tls-alpn -d 'ALPN protocol to offer (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l servername -d 'Name to send as SNI and to verify the certificate against [default: the host]' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l ciphers -d 'Cipher suites, by IANA name, separated by \':\'' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l keyform -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l tls-engine -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l tls-engine-kpass-sha1 -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l psk -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l psk-identity -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand replay" -l no-wait -d 'Publish as fast as the broker takes them, ignoring the recorded timing'
complete -c smq -n "__fish_smq_using_subcommand replay" -l dry-run -d 'Print the messages (as sub -v) instead of publishing them'
complete -c smq -n "__fish_smq_using_subcommand replay" -l skip-bad -d 'Skip malformed lines (with a count) instead of stopping before anything is published'
complete -c smq -n "__fish_smq_using_subcommand replay" -l no-reconnect -d 'Exit when the connection drops instead of reconnecting and resending'
complete -c smq -n "__fish_smq_using_subcommand replay" -l ws -d 'Connect over WebSocket'
complete -c smq -n "__fish_smq_using_subcommand replay" -s c -l disable-clean-session -d 'Keep the session when disconnected (needs -i)'
complete -c smq -n "__fish_smq_using_subcommand replay" -l pw-prompt -d 'Ask for the password on the terminal'
complete -c smq -n "__fish_smq_using_subcommand replay" -l will-retain -d 'Retain the Will'
complete -c smq -n "__fish_smq_using_subcommand replay" -l nodelay -d 'Set TCP_NODELAY'
complete -c smq -n "__fish_smq_using_subcommand replay" -s d -l debug -d 'Trace every packet on stderr'
complete -c smq -n "__fish_smq_using_subcommand replay" -l quiet -d 'Print no error messages'
complete -c smq -n "__fish_smq_using_subcommand replay" -l tls-use-os-certs -d 'Trust the operating system\'s CA store; turns TLS on'
complete -c smq -n "__fish_smq_using_subcommand replay" -l insecure -d 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic'
complete -c smq -n "__fish_smq_using_subcommand replay" -l no-tls -d 'Turn TLS off, even with -p 8883 or a CA option'
complete -c smq -n "__fish_smq_using_subcommand replay" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand bench; and not __fish_seen_subcommand_from conn pub sub latency help" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand bench; and not __fish_seen_subcommand_from conn pub sub latency help" -f -a "conn" -d 'Open many connections at a rate; report connect rate, CONNACK latency and failures'
complete -c smq -n "__fish_smq_using_subcommand bench; and not __fish_seen_subcommand_from conn pub sub latency help" -f -a "pub" -d 'Publishers at a rate or flat out; sequence-numbered, timestamped payloads'
complete -c smq -n "__fish_smq_using_subcommand bench; and not __fish_seen_subcommand_from conn pub sub latency help" -f -a "sub" -d 'Subscribers: delivered rate, latency, and loss, duplicates and order per publisher'
complete -c smq -n "__fish_smq_using_subcommand bench; and not __fish_seen_subcommand_from conn pub sub latency help" -f -a "latency" -d 'Publishers and subscribers in one process at a constant rate: end-to-end latency'
complete -c smq -n "__fish_smq_using_subcommand bench; and not __fish_seen_subcommand_from conn pub sub latency help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s c -l clients -d 'Number of connections' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l rate -d 'New connections per second [default: as fast as the broker answers, 100 handshakes at a time]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l ifaddr -d 'Bind connections to these local addresses in turn (ADDR,ADDR,...), to go past one address\'s ephemeral ports' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l duration -d 'Stop after SECS seconds (conn: hold the connections open until then)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l profile -d 'Connection settings from [profile.NAME] in $XDG_CONFIG_HOME/smq/config.toml (else ~/.config/smq/config.toml): host, port, TLS, username, pw-file; flags given here win' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s h -l host -d 'Broker host, or HOST:PORT ([::1]:1883 for IPv6) [default: localhost]; repeat -h or -L to name brokers to fail over to, tried in the order given (-h is --host, as in mosquitto: help is --help)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s p -l port -d 'Broker port, for brokers named without one [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s L -l url -d 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic (repeatable, as -h)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l connect-retry -d 'Keep trying the first connection for SECS seconds when no broker answers' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l ack-timeout -d 'Seconds the broker may take to acknowledge a message or subscription' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l ws-path -d 'WebSocket path' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l ws-header -d 'Extra WebSocket handshake header \'Name: value\' (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l unix -d 'Connect through a Unix domain socket instead of TCP' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s A -d 'Bind the outgoing socket to this local address' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s V -l protocol-version -d 'MQTT protocol version: auto tries mqttv5, then mqttv311 if the broker refuses it [default: auto]' -r -f -a "auto\t'MQTT 5, then 3.1.1 if the broker does not speak 5'
mqttv311\t''
mqttv5\t''
mqttv31\t''"
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s i -l id -d 'Client id [default: empty, the broker assigns one]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s k -l keepalive -d 'Keep-alive seconds; 0 turns keep-alive off' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s x -l session-expiry -d 'MQTT 5 session expiry seconds; -1 or ∞ never expires' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s u -l username -d 'Username' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s P -l pw -d 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l pw-file -d 'Read the password from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s M -l max-inflight -d 'Maximum QoS 1/2 messages in flight' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l will-topic -d 'Topic of the Will (no wildcards)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l will-payload -d 'Will payload' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l will-qos -d 'Will QoS' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s D -l property -d 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l cafile -d 'Trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l capath -d 'Directory of trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l cert -d 'Client certificate (PEM)' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l key -d 'Client private key (PEM; an encrypted one asks for its passphrase, or takes it from SMQ_KEY_PASSWORD or --key-pw-file)' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l key-pw-file -d 'Read the --key passphrase from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l tls-version -d 'Lowest TLS version: tlsv1.2 or tlsv1.3' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l tls-alpn -d 'ALPN protocol to offer (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l servername -d 'Name to send as SNI and to verify the certificate against [default: the host]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l ciphers -d 'Cipher suites, by IANA name, separated by \':\'' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l keyform -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l tls-engine -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l tls-engine-kpass-sha1 -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l psk -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l psk-identity -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l id-prefix -d 'Client id prefix; the process id is appended' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l json -d 'Print one JSON object (config, counts, rates, percentiles) on stdout at the end'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l csv -d 'Print one CSV row per second on stdout (the summary goes to stderr)'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l ws -d 'Connect over WebSocket'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l pw-prompt -d 'Ask for the password on the terminal'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l will-retain -d 'Retain the Will'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l nodelay -d 'Set TCP_NODELAY'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -s d -l debug -d 'Trace every packet on stderr'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l quiet -d 'Print no error messages'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l tls-use-os-certs -d 'Trust the operating system\'s CA store; turns TLS on'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l insecure -d 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l no-tls -d 'Turn TLS off, even with -p 8883 or a CA option'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l disable-clean-session -d 'Keep the session when disconnected (needs -i)'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from conn" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s c -l clients -d 'Number of publishers' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s I -l interval -d 'Milliseconds between two messages of one publisher' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l rate -d 'Messages per second from each publisher' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s s -l size -d 'Payload size in bytes; the first 24 carry the sequence number and send time' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s q -l qos -d 'QoS of every message' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s t -l topic -d 'Topic template: %i is the client index (from 1), %c the client id, %n the message number (from 1), %% a % [default: smq-bench/%i]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l count -d 'Messages per publisher, then stop' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l ifaddr -d 'Bind connections to these local addresses in turn (ADDR,ADDR,...), to go past one address\'s ephemeral ports' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l duration -d 'Stop after SECS seconds (conn: hold the connections open until then)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l profile -d 'Connection settings from [profile.NAME] in $XDG_CONFIG_HOME/smq/config.toml (else ~/.config/smq/config.toml): host, port, TLS, username, pw-file; flags given here win' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s h -l host -d 'Broker host, or HOST:PORT ([::1]:1883 for IPv6) [default: localhost]; repeat -h or -L to name brokers to fail over to, tried in the order given (-h is --host, as in mosquitto: help is --help)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s p -l port -d 'Broker port, for brokers named without one [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s L -l url -d 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic (repeatable, as -h)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l connect-retry -d 'Keep trying the first connection for SECS seconds when no broker answers' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l ack-timeout -d 'Seconds the broker may take to acknowledge a message or subscription' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l ws-path -d 'WebSocket path' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l ws-header -d 'Extra WebSocket handshake header \'Name: value\' (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l unix -d 'Connect through a Unix domain socket instead of TCP' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s A -d 'Bind the outgoing socket to this local address' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s V -l protocol-version -d 'MQTT protocol version: auto tries mqttv5, then mqttv311 if the broker refuses it [default: auto]' -r -f -a "auto\t'MQTT 5, then 3.1.1 if the broker does not speak 5'
mqttv311\t''
mqttv5\t''
mqttv31\t''"
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s i -l id -d 'Client id [default: empty, the broker assigns one]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s k -l keepalive -d 'Keep-alive seconds; 0 turns keep-alive off' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s x -l session-expiry -d 'MQTT 5 session expiry seconds; -1 or ∞ never expires' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s u -l username -d 'Username' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s P -l pw -d 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l pw-file -d 'Read the password from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s M -l max-inflight -d 'Maximum QoS 1/2 messages in flight' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l will-topic -d 'Topic of the Will (no wildcards)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l will-payload -d 'Will payload' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l will-qos -d 'Will QoS' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s D -l property -d 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l cafile -d 'Trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l capath -d 'Directory of trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l cert -d 'Client certificate (PEM)' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l key -d 'Client private key (PEM; an encrypted one asks for its passphrase, or takes it from SMQ_KEY_PASSWORD or --key-pw-file)' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l key-pw-file -d 'Read the --key passphrase from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l tls-version -d 'Lowest TLS version: tlsv1.2 or tlsv1.3' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l tls-alpn -d 'ALPN protocol to offer (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l servername -d 'Name to send as SNI and to verify the certificate against [default: the host]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l ciphers -d 'Cipher suites, by IANA name, separated by \':\'' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l keyform -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l tls-engine -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l tls-engine-kpass-sha1 -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l psk -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l psk-identity -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l id-prefix -d 'Client id prefix; the process id is appended' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s r -l retain -d 'Set the retain flag'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l json -d 'Print one JSON object (config, counts, rates, percentiles) on stdout at the end'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l csv -d 'Print one CSV row per second on stdout (the summary goes to stderr)'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l ws -d 'Connect over WebSocket'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l pw-prompt -d 'Ask for the password on the terminal'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l will-retain -d 'Retain the Will'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l nodelay -d 'Set TCP_NODELAY'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -s d -l debug -d 'Trace every packet on stderr'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l quiet -d 'Print no error messages'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l tls-use-os-certs -d 'Trust the operating system\'s CA store; turns TLS on'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l insecure -d 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l no-tls -d 'Turn TLS off, even with -p 8883 or a CA option'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l disable-clean-session -d 'Keep the session when disconnected (needs -i)'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from pub" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s c -l clients -d 'Number of subscribers' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s t -l topic -d 'Filter template: %i is the subscriber\'s index (from 1), %c its client id [default: smq-bench/#]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s q -l qos -d 'Requested QoS' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l count -d 'Messages per subscriber, then stop' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l ifaddr -d 'Bind connections to these local addresses in turn (ADDR,ADDR,...), to go past one address\'s ephemeral ports' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l duration -d 'Stop after SECS seconds (conn: hold the connections open until then)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l profile -d 'Connection settings from [profile.NAME] in $XDG_CONFIG_HOME/smq/config.toml (else ~/.config/smq/config.toml): host, port, TLS, username, pw-file; flags given here win' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s h -l host -d 'Broker host, or HOST:PORT ([::1]:1883 for IPv6) [default: localhost]; repeat -h or -L to name brokers to fail over to, tried in the order given (-h is --host, as in mosquitto: help is --help)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s p -l port -d 'Broker port, for brokers named without one [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s L -l url -d 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic (repeatable, as -h)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l connect-retry -d 'Keep trying the first connection for SECS seconds when no broker answers' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l ack-timeout -d 'Seconds the broker may take to acknowledge a message or subscription' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l ws-path -d 'WebSocket path' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l ws-header -d 'Extra WebSocket handshake header \'Name: value\' (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l unix -d 'Connect through a Unix domain socket instead of TCP' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s A -d 'Bind the outgoing socket to this local address' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s V -l protocol-version -d 'MQTT protocol version: auto tries mqttv5, then mqttv311 if the broker refuses it [default: auto]' -r -f -a "auto\t'MQTT 5, then 3.1.1 if the broker does not speak 5'
mqttv311\t''
mqttv5\t''
mqttv31\t''"
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s i -l id -d 'Client id [default: empty, the broker assigns one]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s k -l keepalive -d 'Keep-alive seconds; 0 turns keep-alive off' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s x -l session-expiry -d 'MQTT 5 session expiry seconds; -1 or ∞ never expires' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s u -l username -d 'Username' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s P -l pw -d 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l pw-file -d 'Read the password from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s M -l max-inflight -d 'Maximum QoS 1/2 messages in flight' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l will-topic -d 'Topic of the Will (no wildcards)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l will-payload -d 'Will payload' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l will-qos -d 'Will QoS' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s D -l property -d 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l cafile -d 'Trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l capath -d 'Directory of trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l cert -d 'Client certificate (PEM)' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l key -d 'Client private key (PEM; an encrypted one asks for its passphrase, or takes it from SMQ_KEY_PASSWORD or --key-pw-file)' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l key-pw-file -d 'Read the --key passphrase from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l tls-version -d 'Lowest TLS version: tlsv1.2 or tlsv1.3' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l tls-alpn -d 'ALPN protocol to offer (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l servername -d 'Name to send as SNI and to verify the certificate against [default: the host]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l ciphers -d 'Cipher suites, by IANA name, separated by \':\'' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l keyform -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l tls-engine -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l tls-engine-kpass-sha1 -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l psk -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l psk-identity -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l id-prefix -d 'Client id prefix; the process id is appended' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l json -d 'Print one JSON object (config, counts, rates, percentiles) on stdout at the end'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l csv -d 'Print one CSV row per second on stdout (the summary goes to stderr)'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l ws -d 'Connect over WebSocket'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l pw-prompt -d 'Ask for the password on the terminal'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l will-retain -d 'Retain the Will'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l nodelay -d 'Set TCP_NODELAY'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -s d -l debug -d 'Trace every packet on stderr'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l quiet -d 'Print no error messages'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l tls-use-os-certs -d 'Trust the operating system\'s CA store; turns TLS on'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l insecure -d 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l no-tls -d 'Turn TLS off, even with -p 8883 or a CA option'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l disable-clean-session -d 'Keep the session when disconnected (needs -i)'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from sub" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s c -l clients -d 'Number of publishers' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l subscribers -d 'Number of subscribers, each subscribed to every publisher\'s topic' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l filter -d 'Subscription filter [default: the topic template with each level that holds a % placeholder replaced by +]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s I -l interval -d 'Milliseconds between two messages of one publisher' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l rate -d 'Messages per second from each publisher' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s s -l size -d 'Payload size in bytes; the first 24 carry the sequence number and send time' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s q -l qos -d 'QoS of every message' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s t -l topic -d 'Topic template: %i is the client index (from 1), %c the client id, %n the message number (from 1), %% a % [default: smq-bench/%i]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l count -d 'Messages per publisher, then stop' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l ifaddr -d 'Bind connections to these local addresses in turn (ADDR,ADDR,...), to go past one address\'s ephemeral ports' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l duration -d 'Stop after SECS seconds (conn: hold the connections open until then)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l profile -d 'Connection settings from [profile.NAME] in $XDG_CONFIG_HOME/smq/config.toml (else ~/.config/smq/config.toml): host, port, TLS, username, pw-file; flags given here win' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s h -l host -d 'Broker host, or HOST:PORT ([::1]:1883 for IPv6) [default: localhost]; repeat -h or -L to name brokers to fail over to, tried in the order given (-h is --host, as in mosquitto: help is --help)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s p -l port -d 'Broker port, for brokers named without one [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s L -l url -d 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic (repeatable, as -h)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l connect-retry -d 'Keep trying the first connection for SECS seconds when no broker answers' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l ack-timeout -d 'Seconds the broker may take to acknowledge a message or subscription' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l ws-path -d 'WebSocket path' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l ws-header -d 'Extra WebSocket handshake header \'Name: value\' (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l unix -d 'Connect through a Unix domain socket instead of TCP' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s A -d 'Bind the outgoing socket to this local address' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s V -l protocol-version -d 'MQTT protocol version: auto tries mqttv5, then mqttv311 if the broker refuses it [default: auto]' -r -f -a "auto\t'MQTT 5, then 3.1.1 if the broker does not speak 5'
mqttv311\t''
mqttv5\t''
mqttv31\t''"
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s i -l id -d 'Client id [default: empty, the broker assigns one]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s k -l keepalive -d 'Keep-alive seconds; 0 turns keep-alive off' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s x -l session-expiry -d 'MQTT 5 session expiry seconds; -1 or ∞ never expires' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s u -l username -d 'Username' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s P -l pw -d 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l pw-file -d 'Read the password from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s M -l max-inflight -d 'Maximum QoS 1/2 messages in flight' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l will-topic -d 'Topic of the Will (no wildcards)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l will-payload -d 'Will payload' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l will-qos -d 'Will QoS' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s D -l property -d 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l cafile -d 'Trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l capath -d 'Directory of trusted CA certificates (PEM); turns TLS on' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l cert -d 'Client certificate (PEM)' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l key -d 'Client private key (PEM; an encrypted one asks for its passphrase, or takes it from SMQ_KEY_PASSWORD or --key-pw-file)' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l key-pw-file -d 'Read the --key passphrase from the first line of FILE' -r -F
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l tls-version -d 'Lowest TLS version: tlsv1.2 or tlsv1.3' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l tls-alpn -d 'ALPN protocol to offer (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l servername -d 'Name to send as SNI and to verify the certificate against [default: the host]' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l ciphers -d 'Cipher suites, by IANA name, separated by \':\'' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l keyform -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l tls-engine -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l tls-engine-kpass-sha1 -d 'Not supported by smq (OpenSSL only)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l psk -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l psk-identity -d 'Not supported by smq (TLS-PSK is not in rustls)' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l id-prefix -d 'Client id prefix; the process id is appended' -r
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s r -l retain -d 'Set the retain flag'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l json -d 'Print one JSON object (config, counts, rates, percentiles) on stdout at the end'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l csv -d 'Print one CSV row per second on stdout (the summary goes to stderr)'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l ws -d 'Connect over WebSocket'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l pw-prompt -d 'Ask for the password on the terminal'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l will-retain -d 'Retain the Will'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l nodelay -d 'Set TCP_NODELAY'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -s d -l debug -d 'Trace every packet on stderr'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l quiet -d 'Print no error messages'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l tls-use-os-certs -d 'Trust the operating system\'s CA store; turns TLS on'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l insecure -d 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l no-tls -d 'Turn TLS off, even with -p 8883 or a CA option'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l disable-clean-session -d 'Keep the session when disconnected (needs -i)'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from latency" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "conn" -d 'Open many connections at a rate; report connect rate, CONNACK latency and failures'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "pub" -d 'Publishers at a rate or flat out; sequence-numbered, timestamped payloads'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "sub" -d 'Subscribers: delivered rate, latency, and loss, duplicates and order per publisher'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "latency" -d 'Publishers and subscribers in one process at a constant rate: end-to-end latency'
complete -c smq -n "__fish_smq_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -s c -l config -d 'Read settings from a mosquitto.conf file (the flags below override it)' -r -F
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l listen -d 'Listener URL: mqtt://ADDR:PORT, mqtts://, ws://, wss:// (repeatable; port 0 picks one) [default: mqtt://127.0.0.1:1883 and ws://127.0.0.1:8000]' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -s p -l port -d 'Plain MQTT on PORT, as mosquitto -p: on 127.0.0.1 only, or on every interface with -c (repeatable; adds to --listen and the config file\'s listeners)' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l cert -d 'Server certificate chain (PEM), for mqtts:// and wss://' -r -F
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l key -d 'Server private key (PEM)' -r -F
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l cafile -d 'CA certificates (PEM) that client certificates must chain to' -r -F
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l password-file -d 'Users and password hashes, in mosquitto_passwd\'s format (see `smq passwd`)' -r -F
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l acl-file -d 'Topic access per user, in mosquitto\'s ACL file format' -r -F
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l allow-anonymous -d 'Let clients in without a user name [default: only while every listener is on loopback and there is no --password-file]' -r -f -a "true\t''
false\t''"
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l max-connections -d 'Most clients connected at once [default: 100000]' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l max-packet-size -d 'Largest packet accepted, in bytes [default: 268435455]' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l max-inflight -d 'QoS 1/2 messages in flight to each client (and the receive maximum offered) [default: 100]' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l max-queued -d 'Messages queued per session before new ones are dropped; 0: no limit (then --max-queued-bytes still applies) [default: 1000]' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l max-queued-bytes -d 'Bytes of messages (topic and payload) queued per session before new ones are dropped; 0: no limit; suffixes k, M, G [default: 64MiB]' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l max-keepalive -d 'Largest keep-alive granted to MQTT 5 clients, in seconds [default: 65535]' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l sys-interval -d 'Seconds between $SYS/broker/... updates (0: none) [default: 10]' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l persist -d 'Keep retained messages and persistent sessions in DIR, across restarts and crashes' -r -F
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l bridge -d 'Bridge to another broker: mqtt://[USER[:PASS]@]HOST[:PORT][,HOST[:PORT]...], or mqtts:// for TLS (the mosquitto.conf `connection` section, with try_private false and round_robin)' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l bridge-cafile -d 'With an mqtts:// --bridge: the CA that signed the remote\'s certificate (else the OS certificate store is trusted); a client certificate needs a `connection` section' -r -F
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l bridge-topic -d 'With --bridge: \'PATTERN [in|out|both [QOS [LOCAL_PREFIX [REMOTE_PREFIX]]]]\', as mosquitto.conf\'s `topic` line (repeatable)' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l http-path -d 'Only this request path takes pushes, e.g. /data [default: any path]' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l http-topic -d 'Topic for pushed messages; {deviceId}, {sessionId} and {path} are filled in per request' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l http-qos -d 'QoS of the published messages' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l http-token -d 'Require `Authorization: TOKEN` or `Authorization: Bearer TOKEN` on every push' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l http-max-body -d 'Largest request body, also after gzip decoding (suffixes k, M, KiB, MiB)' -r
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -s v -l verbose -d 'Log connections to stderr (log_type all), as mosquitto -v; without it the broker logs only what the config file\'s log_type/log_dest lines ask for'
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l require-certificate -d 'Refuse TLS clients without a certificate signed by --cafile'
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l use-identity-as-username -d 'On TLS listeners, the client certificate\'s subject CN is the user name (no password)'
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l metrics -d 'Answer GET /metrics on the ws:// listeners in Prometheus\' text format (the $SYS counters, queues, subscriptions, --persist log size and fsync latency)'
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l http -d 'Also accept HTTP on the ws:// port: a POSTed JSON body is published into the broker'
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l split -d 'Publish each Sensor Logger reading on TOPIC/{deviceId}/{sensor} instead of the whole batch'
complete -c smq -n "__fish_smq_using_subcommand serve-broker" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand passwd" -s c -d 'Create the file, replacing one that exists'
complete -c smq -n "__fish_smq_using_subcommand passwd" -s D -d 'Delete the user'
complete -c smq -n "__fish_smq_using_subcommand passwd" -s b -d 'Batch mode: the password is the third argument instead of a prompt (it is then visible to other users of this machine in the process list)'
complete -c smq -n "__fish_smq_using_subcommand passwd" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand certs" -l out-dir -d 'Directory for ca.pem, ca.key, server.pem, server.key, client.pem, client.key' -r -F
complete -c smq -n "__fish_smq_using_subcommand certs" -l name -d 'Another name the server certificate is for: a DNS name or an IP address (repeatable); localhost, 127.0.0.1, ::1, this machine\'s host name and LAN addresses are always on it' -r
complete -c smq -n "__fish_smq_using_subcommand certs" -l client-cn -d 'Common name of the client certificate (the user name with --use-identity-as-username)' -r
complete -c smq -n "__fish_smq_using_subcommand certs" -l days -d 'Days the certificates are valid' -r
complete -c smq -n "__fish_smq_using_subcommand certs" -l force -d 'Replace certificate files that are already there'
complete -c smq -n "__fish_smq_using_subcommand certs" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand generate" -l out-dir -d 'Directory to write completions/ and man/ into' -r -F
complete -c smq -n "__fish_smq_using_subcommand generate" -l help -d 'Print help'
complete -c smq -n "__fish_smq_using_subcommand help; and not __fish_seen_subcommand_from pub sub rr record replay bench serve-broker passwd certs generate help" -f -a "pub" -d 'Publish messages, as mosquitto_pub'
complete -c smq -n "__fish_smq_using_subcommand help; and not __fish_seen_subcommand_from pub sub rr record replay bench serve-broker passwd certs generate help" -f -a "sub" -d 'Subscribe and print messages, as mosquitto_sub'
complete -c smq -n "__fish_smq_using_subcommand help; and not __fish_seen_subcommand_from pub sub rr record replay bench serve-broker passwd certs generate help" -f -a "rr" -d 'Publish a request and print the response, as mosquitto_rr'
complete -c smq -n "__fish_smq_using_subcommand help; and not __fish_seen_subcommand_from pub sub rr record replay bench serve-broker passwd certs generate help" -f -a "record" -d 'Record messages to a CSV or JSONL file'
complete -c smq -n "__fish_smq_using_subcommand help; and not __fish_seen_subcommand_from pub sub rr record replay bench serve-broker passwd certs generate help" -f -a "replay" -d 'Publish a recorded file again, with its original timing'
complete -c smq -n "__fish_smq_using_subcommand help; and not __fish_seen_subcommand_from pub sub rr record replay bench serve-broker passwd certs generate help" -f -a "bench" -d 'Load-test a broker: connections, publishers, subscribers, end-to-end latency'
complete -c smq -n "__fish_smq_using_subcommand help; and not __fish_seen_subcommand_from pub sub rr record replay bench serve-broker passwd certs generate help" -f -a "serve-broker" -d 'Run an MQTT 3.1.1 and 5 broker (TCP, TLS, WebSocket)'
complete -c smq -n "__fish_smq_using_subcommand help; and not __fish_seen_subcommand_from pub sub rr record replay bench serve-broker passwd certs generate help" -f -a "passwd" -d 'Add, change or delete a user in a mosquitto_passwd password file'
complete -c smq -n "__fish_smq_using_subcommand help; and not __fish_seen_subcommand_from pub sub rr record replay bench serve-broker passwd certs generate help" -f -a "certs" -d 'Make a lab CA and v3 server and client certificates, and print the flags that use them'
complete -c smq -n "__fish_smq_using_subcommand help; and not __fish_seen_subcommand_from pub sub rr record replay bench serve-broker passwd certs generate help" -f -a "generate" -d 'Write shell completions and man pages'
complete -c smq -n "__fish_smq_using_subcommand help; and not __fish_seen_subcommand_from pub sub rr record replay bench serve-broker passwd certs generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smq -n "__fish_smq_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "conn" -d 'Open many connections at a rate; report connect rate, CONNACK latency and failures'
complete -c smq -n "__fish_smq_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "pub" -d 'Publishers at a rate or flat out; sequence-numbered, timestamped payloads'
complete -c smq -n "__fish_smq_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "sub" -d 'Subscribers: delivered rate, latency, and loss, duplicates and order per publisher'
complete -c smq -n "__fish_smq_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "latency" -d 'Publishers and subscribers in one process at a constant rate: end-to-end latency'
