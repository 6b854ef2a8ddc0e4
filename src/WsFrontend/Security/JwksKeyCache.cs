using Broker.Frontend.Options;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Frontend.Security;

/// <summary>What <see cref="JwksKeyCache.EnsureAsync"/> found for a token's kid.</summary>
internal enum JwksKeyStatus
{
    /// <summary>The keys in hand may verify the token: one has its kid, or one has no kid, or the token names none.</summary>
    Found,

    /// <summary>The issuer's current keys are in hand and none has the token's kid (or a refetch was not allowed yet).</summary>
    UnknownKid,

    /// <summary>The keys could not be fetched: the JWKS URL failed, or did not answer in time.</summary>
    Unavailable,
}

/// <summary>
/// The public keys an issuer publishes at <c>Broker:Jwt:JwksUrl</c>. Contract:
/// <list type="bullet">
/// <item>Fetched at the first token that needs them; kept for <c>JwksRefreshInterval</c>, after
/// which the next token starts a fetch in the background and is checked with the keys in hand.
/// A failed fetch keeps the keys in hand (the last known good set).</item>
/// <item>A token whose kid no key in hand has waits for a fetch at once — key rotation — but such
/// fetches start at most once per <c>JwksMinRefetchInterval</c>, so made-up kids cannot make the
/// broker hammer the issuer.</item>
/// <item>Single-flight: every token that needs a fetch while one is under way waits for that one.</item>
/// <item>A fetch that fails (HTTP error, no answer within <c>JwksFetchTimeout</c>, not a key set,
/// no usable key) is logged once at Warning and reported as <see cref="JwksKeyStatus.Unavailable"/>
/// to the tokens that waited for it; nothing throws.</item>
/// </list>
/// </summary>
internal sealed partial class JwksKeyCache : IDisposable
{
    /// <summary>The largest JWK Set read; a real one is a few KiB.</summary>
    public const int MaxJwksBytes = 1024 * 1024;

    private readonly Uri _url;
    private readonly HttpClient _http;
    private readonly TimeSpan _refreshInterval;
    private readonly TimeSpan _minRefetchInterval;
    private readonly TimeSpan _fetchTimeout;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private volatile KeySet _keys = KeySet.None;
    private Task<bool>? _fetch;
    private long? _lastFetchStarted;

    public JwksKeyCache(JwtOptions options, TimeProvider time, ILogger logger)
    {
        _url = new Uri(options.JwksUrl ?? throw new ArgumentException("No JwksUrl is configured.", nameof(options)));
        _refreshInterval = options.JwksRefreshInterval;
        _minRefetchInterval = options.JwksMinRefetchInterval;
        _fetchTimeout = options.JwksFetchTimeout;
        _time = time;
        _logger = logger;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = options.JwksFetchTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),

            // Plain http is allowed only because the URL is a loopback address (JwtOptions): a
            // redirect could lead anywhere, and keys fetched in clear from elsewhere could be
            // swapped. https follows redirects (never down to http: HttpClient refuses that).
            AllowAutoRedirect = _url.Scheme == Uri.UriSchemeHttps,
        })
        {
            Timeout = options.JwksFetchTimeout,
            MaxResponseContentBufferSize = MaxJwksBytes,
        };
    }

    /// <summary>The keys in hand: empty until the first fetch succeeds.</summary>
    public IReadOnlyList<SecurityKey> Keys => _keys.Keys;

    /// <summary>Makes sure the keys in hand are the issuer's current ones for a token naming <paramref name="kid"/> (or none).</summary>
    public async ValueTask<JwksKeyStatus> EnsureAsync(string? kid, CancellationToken cancellationToken = default)
    {
        var keys = _keys;
        if (keys.Covers(kid))
        {
            if (_time.GetElapsedTime(keys.FetchedAt) >= _refreshInterval)
            {
                // Due for a refresh: fetched in the background, and this token goes on with the keys in hand.
                _ = StartFetch();
            }

            return JwksKeyStatus.Found;
        }

        var fetch = StartFetch();
        if (fetch is null)
        {
            // A fetch for an unknown kid ran less than JwksMinRefetchInterval ago.
            return keys.Loaded ? JwksKeyStatus.UnknownKid : JwksKeyStatus.Unavailable;
        }

        if (!await fetch.WaitAsync(cancellationToken))
        {
            return JwksKeyStatus.Unavailable;
        }

        return _keys.Covers(kid) ? JwksKeyStatus.Found : JwksKeyStatus.UnknownKid;
    }

    public void Dispose() => _http.Dispose();

    /// <summary>The fetch under way, or a new one; null when the last one started too recently.</summary>
    private Task<bool>? StartFetch()
    {
        lock (_gate)
        {
            if (_fetch is not null)
            {
                return _fetch;
            }

            var now = _time.GetTimestamp();
            if (_lastFetchStarted is { } last && _time.GetElapsedTime(last, now) < _minRefetchInterval)
            {
                return null;
            }

            _lastFetchStarted = now;
            var fetch = FetchAsync();

            // FetchAsync clears _fetch when it ends; one that ended already (inline, under this lock) is not kept.
            _fetch = fetch.IsCompleted ? null : fetch;
            return fetch;
        }
    }

    private async Task<bool> FetchAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(_fetchTimeout, _time);
            using var response = await _http.GetAsync(_url, HttpCompletionOption.ResponseContentRead, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                var status = (int)response.StatusCode;
                LogFetchFailed(_logger, _url, status is >= 300 and < 400 && response.Headers.Location is { } location
                    ? $"HTTP {status}, a redirect to {Shown(new Uri(_url, location))}, not followed (a plain-http JwksUrl is read from that URL only, and no redirect leads from https to http); set Broker:Jwt:JwksUrl to the keys' final https URL"
                    : $"HTTP {status} {response.ReasonPhrase}");
                return false;
            }

            var json = await response.Content.ReadAsStringAsync(timeout.Token);
            var keys = PublicKeyLoader.FromJwks(new JsonWebKeySet(json).Keys);
            if (keys.Count == 0)
            {
                LogFetchFailed(_logger, _url, "the key set holds no public RSA or EC signing key");
                return false;
            }

            _keys = new KeySet(keys, _time.GetTimestamp());
            LogFetched(_logger, keys.Count, _url);
            return true;
        }
        catch (OperationCanceledException)
        {
            LogFetchFailed(_logger, _url, $"no answer within {_fetchTimeout.TotalSeconds:0.###} s (Broker:Jwt:JwksFetchTimeout)");
            return false;
        }
        catch (Exception e)
        {
            // Whatever went wrong (refused connection, TLS, not JSON, not a key set), the fetch
            // failed and nothing else: it runs in the background too, where nobody would see a throw.
            LogFetchFailed(_logger, _url, e.Message);
            return false;
        }
        finally
        {
            lock (_gate)
            {
                _fetch = null;
            }
        }
    }

    /// <summary>A URL for the log, without user info or query (either may hold a secret).</summary>
    private static string Shown(Uri url) => url.IsAbsoluteUri ? $"{url.Scheme}://{url.Authority}{url.AbsolutePath}" : "(a relative URL)";

    [LoggerMessage(EventId = 1401, Level = LogLevel.Warning, Message = "Fetching the token keys from {Url} failed: {Reason}. Tokens that need keys not in hand get HTTP 401 until a fetch succeeds")]
    private static partial void LogFetchFailed(ILogger logger, Uri url, string reason);

    [LoggerMessage(EventId = 1402, Level = LogLevel.Debug, Message = "Fetched {Count} token keys from {Url}")]
    private static partial void LogFetched(ILogger logger, int count, Uri url);

    /// <summary>One fetch's keys, replaced whole.</summary>
    private sealed record KeySet(IReadOnlyList<SecurityKey> Keys, long FetchedAt)
    {
        public static readonly KeySet None = new([], 0);

        public bool Loaded => Keys.Count > 0;

        /// <summary>Some key may verify a token naming <paramref name="kid"/>: one has that kid, or one has none, or the token names none.</summary>
        public bool Covers(string? kid) =>
            Loaded && (string.IsNullOrEmpty(kid) || Keys.Any(k => string.IsNullOrEmpty(k.KeyId) || string.Equals(k.KeyId, kid, StringComparison.Ordinal)));
    }
}
