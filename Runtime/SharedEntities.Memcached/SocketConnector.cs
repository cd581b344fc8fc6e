using System.Net;
using System.Net.Sockets;

namespace SharedEntities.Memcached;

/// <summary>
/// Opens the TCP socket of a <see cref="MetaConnection"/>: resolves the host, then tries its addresses in turn, all
/// within one deadline. The socket is left blocking, with no delay (Nagle off): the synchronous path's calls then go
/// straight to the kernel.
/// </summary>
internal static class SocketConnector
{
    /// <summary>Connects to <paramref name="endpoint"/> by <paramref name="deadline"/> (<see cref="Environment.TickCount64"/>), the end of <paramref name="timeout"/>.</summary>
    /// <exception cref="MemcachedUnavailableException">The host cannot be resolved, or no address accepts the connection.</exception>
    /// <exception cref="MemcachedTimeoutException">The deadline passed.</exception>
    public static async ValueTask<Socket> ConnectAsync(MemcachedEndpoint endpoint, TimeSpan timeout, long deadline, bool async, CancellationToken cancellationToken)
    {
        IPAddress[] addresses;
        try
        {
            addresses = IPAddress.TryParse(endpoint.Host, out IPAddress? address) ? [address]
                : async ? await Dns.GetHostAddressesAsync(endpoint.Host, cancellationToken).ConfigureAwait(false)
                : Dns.GetHostAddresses(endpoint.Host);
        }
        catch (SocketException ex)
        {
            throw new MemcachedUnavailableException(endpoint, $"Cannot resolve the memcached host '{endpoint.Host}': {ex.Message}", ex);
        }

        Exception? last = null;
        foreach (IPAddress address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                long remaining = deadline - Environment.TickCount64;
                if (remaining <= 0)
                {
                    throw new MemcachedTimeoutException(endpoint, $"Connecting to memcached at {endpoint.Address} took longer than {timeout.TotalMilliseconds:0} ms.");
                }

                if (async)
                {
                    using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeoutSource.CancelAfter(TimeSpan.FromMilliseconds(remaining));
                    try
                    {
                        await socket.ConnectAsync(address, endpoint.Port, timeoutSource.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        throw new MemcachedTimeoutException(endpoint, $"Connecting to memcached at {endpoint.Address} took longer than {timeout.TotalMilliseconds:0} ms.");
                    }
                }
                else if (OperatingSystem.IsLinux())
                {
                    // Linux bounds a blocking connect by the send timeout. The socket stays blocking, so the
                    // synchronous path's calls go straight to the kernel (.NET serves a socket that was ever made
                    // non-blocking through its asynchronous engine, which costs thread hops).
                    socket.SendTimeout = (int)remaining;
                    try
                    {
                        socket.Connect(address, endpoint.Port);
                    }
                    catch (SocketException ex) when (ex.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock or SocketError.InProgress)
                    {
                        throw new MemcachedTimeoutException(endpoint, $"Connecting to memcached at {endpoint.Address} took longer than {timeout.TotalMilliseconds:0} ms.", ex);
                    }
                }
                else
                {
                    ConnectWithTimeout(socket, new IPEndPoint(address, endpoint.Port), (int)remaining, endpoint, timeout);
                }

                return socket;
            }
            catch (Exception ex) when (ex is SocketException or MemcachedTimeoutException)
            {
                socket.Dispose();
                last = ex;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw last as MemcachedTimeoutException
            ?? new MemcachedUnavailableException(endpoint, $"Cannot connect to memcached at {endpoint.Address}: {last?.Message ?? "the host has no address"}", last);
    }

    // Socket.Connect has no timeout: connect non-blocking and wait for writability.
    private static void ConnectWithTimeout(Socket socket, IPEndPoint target, int timeoutMs, MemcachedEndpoint endpoint, TimeSpan timeout)
    {
        socket.Blocking = false;
        try
        {
            socket.Connect(target);
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
        {
            if (!socket.Poll(checked(timeoutMs * 1000), SelectMode.SelectWrite))
            {
                throw new MemcachedTimeoutException(endpoint, $"Connecting to memcached at {endpoint.Address} took longer than {timeout.TotalMilliseconds:0} ms.");
            }

            int error = (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
            if (error != 0)
            {
                throw new SocketException(error);
            }
        }

        socket.Blocking = true;
    }
}
