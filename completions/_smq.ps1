
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'smq' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'smq'
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
        'smq' {
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (-h is --host, as in mosquitto)')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print the version')
            [CompletionResult]::new('pub', 'pub', [CompletionResultType]::ParameterValue, 'Publish messages, as mosquitto_pub')
            [CompletionResult]::new('sub', 'sub', [CompletionResultType]::ParameterValue, 'Subscribe and print messages, as mosquitto_sub')
            [CompletionResult]::new('serve-broker', 'serve-broker', [CompletionResultType]::ParameterValue, 'Run an MQTT 3.1.1 and 5 broker (TCP, TLS, WebSocket)')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write shell completions and man pages')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'smq;pub' {
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Topic to publish to (no wildcards); may come from -L instead')
            [CompletionResult]::new('--topic', '--topic', [CompletionResultType]::ParameterName, 'Topic to publish to (no wildcards); may come from -L instead')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Send this argument as the payload')
            [CompletionResult]::new('--message', '--message', [CompletionResultType]::ParameterName, 'Send this argument as the payload')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Send the whole file as one payload (binary-safe)')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Send the whole file as one payload (binary-safe)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Quality of service for every message')
            [CompletionResult]::new('--qos', '--qos', [CompletionResultType]::ParameterName, 'Quality of service for every message')
            [CompletionResult]::new('--repeat', '--repeat', [CompletionResultType]::ParameterName, 'Publish the -m/-f/-s payload N times')
            [CompletionResult]::new('--repeat-delay', '--repeat-delay', [CompletionResultType]::ParameterName, 'Seconds (fractions allowed) to wait after each message is delivered before the next')
            [CompletionResult]::new('--line-topic-sep', '--line-topic-sep', [CompletionResultType]::ParameterName, 'With -l: each line is TOPIC<SEP>PAYLOAD (SEP may be an escape such as ''\t'')')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Publish at most N messages per second')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Broker host')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Broker host')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Broker port [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Broker port [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]')
            [CompletionResult]::new('-L', '-L ', [CompletionResultType]::ParameterName, 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic')
            [CompletionResult]::new('--ws-path', '--ws-path', [CompletionResultType]::ParameterName, 'WebSocket path')
            [CompletionResult]::new('--ws-header', '--ws-header', [CompletionResultType]::ParameterName, 'Extra WebSocket handshake header ''Name: value'' (repeatable)')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'Connect through a Unix domain socket instead of TCP')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Bind the outgoing socket to this local address')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'MQTT protocol version [default: mqttv311, or mqttv5 with -D or -x]')
            [CompletionResult]::new('--protocol-version', '--protocol-version', [CompletionResultType]::ParameterName, 'MQTT protocol version [default: mqttv311, or mqttv5 with -D or -x]')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Client id [default: empty, the broker assigns one]')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'Client id [default: empty, the broker assigns one]')
            [CompletionResult]::new('-I', '-I ', [CompletionResultType]::ParameterName, 'Client id prefix; the process id is appended')
            [CompletionResult]::new('--id-prefix', '--id-prefix', [CompletionResultType]::ParameterName, 'Client id prefix; the process id is appended')
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'Keep-alive seconds; 0 turns keep-alive off')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Keep-alive seconds; 0 turns keep-alive off')
            [CompletionResult]::new('-x', '-x', [CompletionResultType]::ParameterName, 'MQTT 5 session expiry seconds; -1 or ∞ never expires')
            [CompletionResult]::new('--session-expiry', '--session-expiry', [CompletionResultType]::ParameterName, 'MQTT 5 session expiry seconds; -1 or ∞ never expires')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'Username')
            [CompletionResult]::new('--username', '--username', [CompletionResultType]::ParameterName, 'Username')
            [CompletionResult]::new('-P', '-P ', [CompletionResultType]::ParameterName, 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)')
            [CompletionResult]::new('--pw', '--pw', [CompletionResultType]::ParameterName, 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)')
            [CompletionResult]::new('--pw-file', '--pw-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of FILE')
            [CompletionResult]::new('-M', '-M ', [CompletionResultType]::ParameterName, 'Maximum QoS 1/2 messages in flight')
            [CompletionResult]::new('--max-inflight', '--max-inflight', [CompletionResultType]::ParameterName, 'Maximum QoS 1/2 messages in flight')
            [CompletionResult]::new('--will-topic', '--will-topic', [CompletionResultType]::ParameterName, 'Topic of the Will (no wildcards)')
            [CompletionResult]::new('--will-payload', '--will-payload', [CompletionResultType]::ParameterName, 'Will payload')
            [CompletionResult]::new('--will-qos', '--will-qos', [CompletionResultType]::ParameterName, 'Will QoS')
            [CompletionResult]::new('-D', '-D ', [CompletionResultType]::ParameterName, 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)')
            [CompletionResult]::new('--property', '--property', [CompletionResultType]::ParameterName, 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)')
            [CompletionResult]::new('--cafile', '--cafile', [CompletionResultType]::ParameterName, 'Trusted CA certificates (PEM); turns TLS on')
            [CompletionResult]::new('--capath', '--capath', [CompletionResultType]::ParameterName, 'Directory of trusted CA certificates (PEM); turns TLS on')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate (PEM)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client private key (PEM)')
            [CompletionResult]::new('--tls-version', '--tls-version', [CompletionResultType]::ParameterName, 'Lowest TLS version: tlsv1.2 or tlsv1.3')
            [CompletionResult]::new('--tls-alpn', '--tls-alpn', [CompletionResultType]::ParameterName, 'ALPN protocol to offer (repeatable)')
            [CompletionResult]::new('--servername', '--servername', [CompletionResultType]::ParameterName, 'Name to send as SNI and to verify the certificate against [default: the host]')
            [CompletionResult]::new('--ciphers', '--ciphers', [CompletionResultType]::ParameterName, 'Cipher suites, by IANA name, separated by '':''')
            [CompletionResult]::new('--keyform', '--keyform', [CompletionResultType]::ParameterName, 'Not supported by smq (OpenSSL only)')
            [CompletionResult]::new('--tls-engine', '--tls-engine', [CompletionResultType]::ParameterName, 'Not supported by smq (OpenSSL only)')
            [CompletionResult]::new('--tls-engine-kpass-sha1', '--tls-engine-kpass-sha1', [CompletionResultType]::ParameterName, 'Not supported by smq (OpenSSL only)')
            [CompletionResult]::new('--psk', '--psk', [CompletionResultType]::ParameterName, 'Not supported by smq (TLS-PSK is not in rustls)')
            [CompletionResult]::new('--psk-identity', '--psk-identity', [CompletionResultType]::ParameterName, 'Not supported by smq (TLS-PSK is not in rustls)')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Send all of stdin as one payload')
            [CompletionResult]::new('--stdin-file', '--stdin-file', [CompletionResultType]::ParameterName, 'Send all of stdin as one payload')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Send each line of stdin as its own message, as lines arrive')
            [CompletionResult]::new('--stdin-line', '--stdin-line', [CompletionResultType]::ParameterName, 'Send each line of stdin as its own message, as lines arrive')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Send a zero-length payload (with -r: clear the retained message)')
            [CompletionResult]::new('--null-message', '--null-message', [CompletionResultType]::ParameterName, 'Send a zero-length payload (with -r: clear the retained message)')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Set the retain flag')
            [CompletionResult]::new('--retain', '--retain', [CompletionResultType]::ParameterName, 'Set the retain flag')
            [CompletionResult]::new('--send-empty', '--send-empty', [CompletionResultType]::ParameterName, 'With -l: send empty lines as zero-length messages instead of skipping them')
            [CompletionResult]::new('--ws', '--ws', [CompletionResultType]::ParameterName, 'Connect over WebSocket')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Keep the session when disconnected (needs -i)')
            [CompletionResult]::new('--disable-clean-session', '--disable-clean-session', [CompletionResultType]::ParameterName, 'Keep the session when disconnected (needs -i)')
            [CompletionResult]::new('--pw-prompt', '--pw-prompt', [CompletionResultType]::ParameterName, 'Ask for the password on the terminal')
            [CompletionResult]::new('--will-retain', '--will-retain', [CompletionResultType]::ParameterName, 'Retain the Will')
            [CompletionResult]::new('--nodelay', '--nodelay', [CompletionResultType]::ParameterName, 'Set TCP_NODELAY')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Trace every packet on stderr')
            [CompletionResult]::new('--debug', '--debug', [CompletionResultType]::ParameterName, 'Trace every packet on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print no error messages')
            [CompletionResult]::new('--tls-use-os-certs', '--tls-use-os-certs', [CompletionResultType]::ParameterName, 'Trust the operating system''s CA store; turns TLS on')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic')
            [CompletionResult]::new('--no-tls', '--no-tls', [CompletionResultType]::ParameterName, 'Turn TLS off, even with -p 8883 or a CA option')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (-h is --host, as in mosquitto)')
            break
        }
        'smq;sub' {
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Topic filter to subscribe to (repeatable; + and # wildcards); may come from -L')
            [CompletionResult]::new('--topic', '--topic', [CompletionResultType]::ParameterName, 'Topic filter to subscribe to (repeatable; + and # wildcards); may come from -L')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Don''t print messages whose topic matches FILTER (repeatable)')
            [CompletionResult]::new('--filter-out', '--filter-out', [CompletionResultType]::ParameterName, 'Don''t print messages whose topic matches FILTER (repeatable)')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Unsubscribe from FILTER, e.g. to clean up a persistent session (repeatable)')
            [CompletionResult]::new('--unsubscribe', '--unsubscribe', [CompletionResultType]::ParameterName, 'Unsubscribe from FILTER, e.g. to clean up a persistent session (repeatable)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Requested QoS for every filter')
            [CompletionResult]::new('--qos', '--qos', [CompletionResultType]::ParameterName, 'Requested QoS for every filter')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Exit after N messages')
            [CompletionResult]::new('-W', '-W ', [CompletionResultType]::ParameterName, 'Give up after SECS seconds: prints "Timed out" and exits 27')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'Output format (see mosquitto_sub(1)); overrides -v')
            [CompletionResult]::new('--random-filter', '--random-filter', [CompletionResultType]::ParameterName, 'Print about PCT percent of messages (0.1-100)')
            [CompletionResult]::new('--retain-handling', '--retain-handling', [CompletionResultType]::ParameterName, 'MQTT 5: when the broker sends retained messages')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Exit when nothing has arrived for SECS seconds')
            [CompletionResult]::new('--grep', '--grep', [CompletionResultType]::ParameterName, 'Print only messages whose payload matches REGEX')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Broker host')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Broker host')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Broker port [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Broker port [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]')
            [CompletionResult]::new('-L', '-L ', [CompletionResultType]::ParameterName, 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic')
            [CompletionResult]::new('--ws-path', '--ws-path', [CompletionResultType]::ParameterName, 'WebSocket path')
            [CompletionResult]::new('--ws-header', '--ws-header', [CompletionResultType]::ParameterName, 'Extra WebSocket handshake header ''Name: value'' (repeatable)')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'Connect through a Unix domain socket instead of TCP')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Bind the outgoing socket to this local address')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'MQTT protocol version [default: mqttv311, or mqttv5 with -D or -x]')
            [CompletionResult]::new('--protocol-version', '--protocol-version', [CompletionResultType]::ParameterName, 'MQTT protocol version [default: mqttv311, or mqttv5 with -D or -x]')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Client id [default: empty, the broker assigns one]')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'Client id [default: empty, the broker assigns one]')
            [CompletionResult]::new('-I', '-I ', [CompletionResultType]::ParameterName, 'Client id prefix; the process id is appended')
            [CompletionResult]::new('--id-prefix', '--id-prefix', [CompletionResultType]::ParameterName, 'Client id prefix; the process id is appended')
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'Keep-alive seconds; 0 turns keep-alive off')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Keep-alive seconds; 0 turns keep-alive off')
            [CompletionResult]::new('-x', '-x', [CompletionResultType]::ParameterName, 'MQTT 5 session expiry seconds; -1 or ∞ never expires')
            [CompletionResult]::new('--session-expiry', '--session-expiry', [CompletionResultType]::ParameterName, 'MQTT 5 session expiry seconds; -1 or ∞ never expires')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'Username')
            [CompletionResult]::new('--username', '--username', [CompletionResultType]::ParameterName, 'Username')
            [CompletionResult]::new('-P', '-P ', [CompletionResultType]::ParameterName, 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)')
            [CompletionResult]::new('--pw', '--pw', [CompletionResultType]::ParameterName, 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)')
            [CompletionResult]::new('--pw-file', '--pw-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of FILE')
            [CompletionResult]::new('-M', '-M ', [CompletionResultType]::ParameterName, 'Maximum QoS 1/2 messages in flight')
            [CompletionResult]::new('--max-inflight', '--max-inflight', [CompletionResultType]::ParameterName, 'Maximum QoS 1/2 messages in flight')
            [CompletionResult]::new('--will-topic', '--will-topic', [CompletionResultType]::ParameterName, 'Topic of the Will (no wildcards)')
            [CompletionResult]::new('--will-payload', '--will-payload', [CompletionResultType]::ParameterName, 'Will payload')
            [CompletionResult]::new('--will-qos', '--will-qos', [CompletionResultType]::ParameterName, 'Will QoS')
            [CompletionResult]::new('-D', '-D ', [CompletionResultType]::ParameterName, 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)')
            [CompletionResult]::new('--property', '--property', [CompletionResultType]::ParameterName, 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)')
            [CompletionResult]::new('--cafile', '--cafile', [CompletionResultType]::ParameterName, 'Trusted CA certificates (PEM); turns TLS on')
            [CompletionResult]::new('--capath', '--capath', [CompletionResultType]::ParameterName, 'Directory of trusted CA certificates (PEM); turns TLS on')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate (PEM)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client private key (PEM)')
            [CompletionResult]::new('--tls-version', '--tls-version', [CompletionResultType]::ParameterName, 'Lowest TLS version: tlsv1.2 or tlsv1.3')
            [CompletionResult]::new('--tls-alpn', '--tls-alpn', [CompletionResultType]::ParameterName, 'ALPN protocol to offer (repeatable)')
            [CompletionResult]::new('--servername', '--servername', [CompletionResultType]::ParameterName, 'Name to send as SNI and to verify the certificate against [default: the host]')
            [CompletionResult]::new('--ciphers', '--ciphers', [CompletionResultType]::ParameterName, 'Cipher suites, by IANA name, separated by '':''')
            [CompletionResult]::new('--keyform', '--keyform', [CompletionResultType]::ParameterName, 'Not supported by smq (OpenSSL only)')
            [CompletionResult]::new('--tls-engine', '--tls-engine', [CompletionResultType]::ParameterName, 'Not supported by smq (OpenSSL only)')
            [CompletionResult]::new('--tls-engine-kpass-sha1', '--tls-engine-kpass-sha1', [CompletionResultType]::ParameterName, 'Not supported by smq (OpenSSL only)')
            [CompletionResult]::new('--psk', '--psk', [CompletionResultType]::ParameterName, 'Not supported by smq (TLS-PSK is not in rustls)')
            [CompletionResult]::new('--psk-identity', '--psk-identity', [CompletionResultType]::ParameterName, 'Not supported by smq (TLS-PSK is not in rustls)')
            [CompletionResult]::new('-E', '-E ', [CompletionResultType]::ParameterName, 'Exit once every subscription is acknowledged')
            [CompletionResult]::new('-R', '-R ', [CompletionResultType]::ParameterName, 'Don''t print retained (stale) messages; in MQTT 5 the broker is asked not to send them')
            [CompletionResult]::new('--retained-only', '--retained-only', [CompletionResultType]::ParameterName, 'Print only retained messages; exit at the first message that is not retained')
            [CompletionResult]::new('--remove-retained', '--remove-retained', [CompletionResultType]::ParameterName, 'Clear every retained message received (respects -T)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print the topic before each payload')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print the topic before each payload')
            [CompletionResult]::new('-N', '-N ', [CompletionResultType]::ParameterName, 'No newline after each message')
            [CompletionResult]::new('--pretty', '--pretty', [CompletionResultType]::ParameterName, 'Multi-line JSON for %j and %J')
            [CompletionResult]::new('--retain-as-published', '--retain-as-published', [CompletionResultType]::ParameterName, 'MQTT 5: keep the retain flag as published')
            [CompletionResult]::new('--no-local', '--no-local', [CompletionResultType]::ParameterName, 'MQTT 5: don''t receive our own publishes')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object per line: topic, payload (or payload_b64), qos, retain, time, properties')
            [CompletionResult]::new('--changed-only', '--changed-only', [CompletionResultType]::ParameterName, 'Print a message only when its payload differs from the last one on its topic')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Instead of payloads: a live per-topic table on stderr, and a summary on exit')
            [CompletionResult]::new('--no-reconnect', '--no-reconnect', [CompletionResultType]::ParameterName, 'Exit when the connection drops instead of reconnecting')
            [CompletionResult]::new('--ws', '--ws', [CompletionResultType]::ParameterName, 'Connect over WebSocket')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Keep the session when disconnected (needs -i)')
            [CompletionResult]::new('--disable-clean-session', '--disable-clean-session', [CompletionResultType]::ParameterName, 'Keep the session when disconnected (needs -i)')
            [CompletionResult]::new('--pw-prompt', '--pw-prompt', [CompletionResultType]::ParameterName, 'Ask for the password on the terminal')
            [CompletionResult]::new('--will-retain', '--will-retain', [CompletionResultType]::ParameterName, 'Retain the Will')
            [CompletionResult]::new('--nodelay', '--nodelay', [CompletionResultType]::ParameterName, 'Set TCP_NODELAY')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Trace every packet on stderr')
            [CompletionResult]::new('--debug', '--debug', [CompletionResultType]::ParameterName, 'Trace every packet on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print no error messages')
            [CompletionResult]::new('--tls-use-os-certs', '--tls-use-os-certs', [CompletionResultType]::ParameterName, 'Trust the operating system''s CA store; turns TLS on')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic')
            [CompletionResult]::new('--no-tls', '--no-tls', [CompletionResultType]::ParameterName, 'Turn TLS off, even with -p 8883 or a CA option')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (-h is --host, as in mosquitto)')
            break
        }
        'smq;serve-broker' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Listener URL: mqtt://ADDR:PORT, mqtts://, ws://, wss:// (repeatable; port 0 picks one) [default: mqtt://127.0.0.1:1883 and ws://127.0.0.1:8000]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Server certificate chain (PEM), for mqtts:// and wss://')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Server private key (PEM)')
            [CompletionResult]::new('--cafile', '--cafile', [CompletionResultType]::ParameterName, 'CA certificates (PEM) that client certificates must chain to')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Most clients connected at once')
            [CompletionResult]::new('--max-packet-size', '--max-packet-size', [CompletionResultType]::ParameterName, 'Largest packet accepted, in bytes')
            [CompletionResult]::new('--max-inflight', '--max-inflight', [CompletionResultType]::ParameterName, 'QoS 1/2 messages in flight to each client (and the receive maximum offered)')
            [CompletionResult]::new('--max-queued', '--max-queued', [CompletionResultType]::ParameterName, 'Messages queued per session before new ones are dropped')
            [CompletionResult]::new('--max-keepalive', '--max-keepalive', [CompletionResultType]::ParameterName, 'Largest keep-alive granted to MQTT 5 clients, in seconds')
            [CompletionResult]::new('--sys-interval', '--sys-interval', [CompletionResultType]::ParameterName, 'Seconds between $SYS/broker/... updates (0: none)')
            [CompletionResult]::new('--require-certificate', '--require-certificate', [CompletionResultType]::ParameterName, 'Refuse TLS clients without a certificate signed by --cafile')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (-h is --host, as in mosquitto)')
            break
        }
        'smq;generate' {
            [CompletionResult]::new('--out-dir', '--out-dir', [CompletionResultType]::ParameterName, 'Directory to write completions/ and man/ into')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (-h is --host, as in mosquitto)')
            break
        }
        'smq;help' {
            [CompletionResult]::new('pub', 'pub', [CompletionResultType]::ParameterValue, 'Publish messages, as mosquitto_pub')
            [CompletionResult]::new('sub', 'sub', [CompletionResultType]::ParameterValue, 'Subscribe and print messages, as mosquitto_sub')
            [CompletionResult]::new('serve-broker', 'serve-broker', [CompletionResultType]::ParameterValue, 'Run an MQTT 3.1.1 and 5 broker (TCP, TLS, WebSocket)')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write shell completions and man pages')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'smq;help;pub' {
            break
        }
        'smq;help;sub' {
            break
        }
        'smq;help;serve-broker' {
            break
        }
        'smq;help;generate' {
            break
        }
        'smq;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
