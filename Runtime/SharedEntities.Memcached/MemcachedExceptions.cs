namespace SharedEntities.Memcached;

/// <summary>
/// Why a memcached operation did not complete. <see cref="MemcachedStore"/> never throws these: it puts them in
/// <see cref="Stores.StoreResult.Error"/> of the operations they affected.
/// </summary>
public class MemcachedException : SharedEntityException
{
    /// <summary>Creates the exception.</summary>
    public MemcachedException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a server.</summary>
    public MemcachedException(MemcachedEndpoint? server, string message, Exception? innerException = null)
        : base(message, innerException) => Server = server;

    /// <summary>The server involved, when known.</summary>
    public MemcachedEndpoint? Server { get; }
}

/// <summary>
/// The server could not be reached: connection refused or lost, timed out, or its circuit breaker is open. Operations
/// get <see cref="Stores.StoreStatus.Unavailable"/>.
/// </summary>
public class MemcachedUnavailableException : MemcachedException
{
    /// <summary>Creates the exception.</summary>
    public MemcachedUnavailableException(MemcachedEndpoint? server, string message, Exception? innerException = null)
        : base(server, message, innerException)
    {
    }
}

/// <summary>The server did not answer within the operation timeout; the connection was closed.</summary>
public sealed class MemcachedTimeoutException : MemcachedUnavailableException
{
    /// <summary>Creates the exception.</summary>
    public MemcachedTimeoutException(MemcachedEndpoint? server, string message, Exception? innerException = null)
        : base(server, message, innerException)
    {
    }
}

/// <summary>
/// The server answered something the client cannot accept: a malformed or truncated reply, a reply to the wrong
/// request, or an error line (<c>ERROR</c>, <c>CLIENT_ERROR</c>, <c>SERVER_ERROR</c>). The connection was closed;
/// operations get <see cref="Stores.StoreStatus.Failed"/>.
/// </summary>
public sealed class MemcachedProtocolException : MemcachedException
{
    /// <summary>Creates the exception.</summary>
    public MemcachedProtocolException(MemcachedEndpoint? server, string message, Exception? innerException = null)
        : base(server, message, innerException)
    {
    }
}

/// <summary>
/// The server refused the client's <see cref="MemcachedClientOptions.Username"/> and
/// <see cref="MemcachedClientOptions.Password"/>, or demands them and none are set. A configuration error: the
/// server's operations get <see cref="Stores.StoreStatus.Unavailable"/> (readers ask the database) and reconnects back
/// off as after any failed connect. The message never holds the credentials.
/// </summary>
public sealed class MemcachedAuthenticationException : MemcachedUnavailableException
{
    /// <summary>Creates the exception.</summary>
    public MemcachedAuthenticationException(MemcachedEndpoint? server, string message, Exception? innerException = null)
        : base(server, message, innerException)
    {
    }
}

/// <summary>
/// The TLS handshake failed: the server's certificate was not trusted (<see cref="PolicyErrors"/> says why), or the
/// server does not speak TLS. A configuration error, answered like <see cref="MemcachedAuthenticationException"/>.
/// </summary>
public sealed class MemcachedTlsException : MemcachedUnavailableException
{
    /// <summary>Creates the exception.</summary>
    public MemcachedTlsException(MemcachedEndpoint? server, string message, System.Net.Security.SslPolicyErrors policyErrors, Exception? innerException = null)
        : base(server, message, innerException) => PolicyErrors = policyErrors;

    /// <summary>What was wrong with the server's certificate; <see cref="System.Net.Security.SslPolicyErrors.None"/> when the handshake failed for another reason.</summary>
    public System.Net.Security.SslPolicyErrors PolicyErrors { get; }
}
