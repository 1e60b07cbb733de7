using System.Net;
using Glass.Controller;
using Glass.Translator;
using Prometheus;

namespace Glass.Metrics;

/// <summary>
/// The router's Prometheus metrics, served by prometheus-net at http://ADDRESS:PORT/metrics. A
/// translator and a controller in one process share one endpoint per address and port; each
/// adds its figures, read from its own counters when Prometheus scrapes, and takes them away
/// when it stops. The endpoint closes with the last of them.
/// </summary>
public sealed class RouterMetrics : IDisposable
{
    private static readonly Dictionary<(IPAddress, int), Endpoint> s_endpoints = new();
    private readonly Endpoint _endpoint;
    private readonly Action _update;
    private int _disposed;

    private RouterMetrics(Endpoint endpoint, Action update)
    {
        _endpoint = endpoint;
        _update = update;
    }

    /// <summary>Exports a translator's sessions, packets, bytes, drops by reason and offload counters.</summary>
    public static RouterMetrics ForTranslator(IPAddress address, int port, Func<SpliceCounters?> read) => Add(address, port, f =>
    {
        var sessions = f.CreateGauge("glass_translator_sessions", "Sessions by state.", "state");
        var offloaded = f.CreateGauge("glass_translator_sessions_offloaded", "Sessions a conntrack entry carries now.");
        var packets = f.CreateCounter("glass_translator_packets_relayed_total", "Segments the translator relayed itself.");
        var bytes = f.CreateCounter("glass_translator_bytes_relayed_total", "Bytes of the segments the translator relayed itself.");
        var synAcks = f.CreateCounter("glass_translator_synacks_sent_total", "Crafted SYN-ACKs sent.");
        var created = f.CreateCounter("glass_translator_sessions_created_total", "Sessions created.");
        var released = f.CreateCounter("glass_translator_sessions_released_total", "Sessions ended.");
        var offloads = f.CreateCounter("glass_translator_offloaded_total", "Sessions handed to the kernel.");
        var failures = f.CreateCounter("glass_translator_offload_failures_total", "Sessions the kernel refused to take.");
        var drops = f.CreateCounter("glass_translator_drops_total", "Queued packets not relayed, by reason.", "reason");
        var ignored = f.CreateCounter("glass_translator_ignored_total", "Segments relayed but not believed (outside the windows, RFC 5961), by reason.", "reason");
        var icmpToKernel = f.CreateCounter("glass_translator_icmp_left_to_kernel_total", "ICMP errors about no session, handed back to the kernel.");
        var contested = f.CreateCounter("glass_translator_syns_contested_total", "Second SYNs for a side of a link before either proved itself.");
        var refused = f.CreateCounter("glass_translator_syns_refused_total", "SYNs to a link that ended unpaired, answered with a reset.");
        var keptLocal = f.CreateCounter("glass_translator_sessions_kept_local_total", "Sessions relayed by the translator itself because a peer is on the router's host.");
        var disowned = f.CreateCounter("glass_translator_syns_disowned_total", "SYNs whose SYN-ACK the host at their source address reset (spoofed, or abandoned).");
        var proofRetries = f.CreateCounter("glass_translator_proof_retries_total", "SYN-ACKs sent again to a connector whose acknowledgment was lost, on the binder's retransmitted SYN.");
        return () =>
        {
            if (read() is not { } c)
                return;
            foreach (var (state, n) in c.SessionsByState)
                sessions.WithLabels(state).Set(n);
            offloaded.Set(c.SessionsOffloaded);
            packets.IncTo(c.PacketsRelayed);
            bytes.IncTo(c.BytesRelayed);
            synAcks.IncTo(c.SynAcksSent);
            created.IncTo(c.SessionsCreated);
            released.IncTo(c.SessionsReleased);
            offloads.IncTo(c.OffloadedTotal);
            failures.IncTo(c.OffloadFailures);
            foreach (var (reason, n) in c.Drops)
                drops.WithLabels(reason).IncTo(n);
            foreach (var (reason, n) in c.Ignored)
                ignored.WithLabels(reason).IncTo(n);
            icmpToKernel.IncTo(c.IcmpLeftToKernel);
            contested.IncTo(c.SynsContested);
            refused.IncTo(c.SynsRefused);
            keptLocal.IncTo(c.SessionsKeptLocal);
            disowned.IncTo(c.SynsDisowned);
            proofRetries.IncTo(c.ProofRetries);
        };
    });

    /// <summary>Exports a controller's bindings, channels, ports in use, client sessions, connects, refusals by error id, request timeouts and TLS failures.</summary>
    public static RouterMetrics ForController(IPAddress address, int port, Func<ControllerStatus> read) => Add(address, port, f =>
    {
        var bindings = f.CreateGauge("glass_controller_bindings", "Binders connected now.");
        var channels = f.CreateGauge("glass_controller_channels", "Channel ids registered, bound or waiting for their binder.");
        var ports = f.CreateGauge("glass_controller_ports_in_use", "Router ports held by links not yet paired.");
        var sessions = f.CreateGauge("glass_controller_client_sessions", "Connectors' persistent sessions open now.");
        var connects = f.CreateCounter("glass_controller_connects_total", "Connect requests answered with a router endpoint.");
        var refused = f.CreateCounter("glass_controller_refused_total", "Requests refused, by error id.", "error");
        var timeouts = f.CreateCounter("glass_controller_request_timeouts_total", "Connections closed for sending no whole first request (TLS handshake included) in time.");
        var tlsFailures = f.CreateCounter("glass_controller_tls_failures_total", "TLS handshakes that failed (not those cut off by the request timeout).");
        return () =>
        {
            var s = read();
            bindings.Set(s.Bindings);
            channels.Set(s.Channels);
            ports.Set(s.PortsInUse);
            sessions.Set(s.Sessions);
            connects.IncTo(s.Connects);
            foreach (var (code, n) in s.RefusedByCode ?? new Dictionary<string, long>())
                refused.WithLabels(code).IncTo(n);
            timeouts.IncTo(s.RequestTimeouts);
            tlsFailures.IncTo(s.TlsFailures);
        };
    });

    private static RouterMetrics Add(IPAddress address, int port, Func<MetricFactory, Action> define)
    {
        lock (s_endpoints)
        {
            if (!s_endpoints.TryGetValue((address, port), out var endpoint))
            {
                endpoint = new Endpoint(address, port);
                s_endpoints[(address, port)] = endpoint;
            }
            var metrics = new RouterMetrics(endpoint, define(Prometheus.Metrics.WithCustomRegistry(endpoint.Registry)));
            endpoint.Updates.Add(metrics._update);
            return metrics;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        lock (s_endpoints)
        {
            _endpoint.Updates.Remove(_update);
            if (_endpoint.Updates.Count > 0)
                return;
            s_endpoints.Remove(_endpoint.Key);
            _endpoint.Dispose();
        }
    }

    /// <summary>One listening endpoint and its registry.</summary>
    private sealed class Endpoint : IDisposable
    {
        private readonly MetricServer _server;

        public Endpoint(IPAddress address, int port)
        {
            Key = (address, port);
            Registry = Prometheus.Metrics.NewCustomRegistry();
            // What the services' counters say now, read at each scrape.
            Registry.AddBeforeCollectCallback(() =>
            {
                lock (s_endpoints)
                {
                    foreach (var update in Updates)
                        update();
                }
            });
            var host = address.Equals(IPAddress.Any) ? "+" : address.ToString();
            _server = new MetricServer(host, port, "metrics/", Registry);
            try
            {
                _server.Start();
            }
            catch (Exception e) when (e is HttpListenerException or System.Net.Sockets.SocketException or InvalidOperationException)
            {
                throw new GlassException("metrics-unavailable", $"Cannot serve metrics on {address}:{port}: {e.Message}. Pick another metrics port.", e);
            }
        }

        public (IPAddress, int) Key { get; }
        public CollectorRegistry Registry { get; }
        public List<Action> Updates { get; } = new();

        public void Dispose() => _server.Dispose();
    }
}
