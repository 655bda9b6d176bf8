// Noticing that a client went away. A client that closes its connection — the process killed, the request abandoned —
// sends FIN; SwiftNIO (with remote half-closure on, as Hummingbird sets it) turns it into an `inputClosed` event
// rather than closing the channel, and nothing is written to a non-streamed request until its answer is complete, so
// no write fails either. This handler sits in every connection's pipeline after the HTTP decoder and sets the
// cancellation flags of the requests that registered with it when the input ends or the connection goes away. The
// connection stays usable for the next request meanwhile (keep-alive), unlike Hummingbird's own inbound-close
// handler, which closes it after every request it watches.
// What it cannot tell: a client that half-closes on purpose and still waits for its answer (rare: `nc -N`) is taken
// for gone.
import NIOCore
import _Essentials

/// Watches one connection for the end of its input; requests register their cancellation flags with it.
// @unchecked: `gone` and `watchers` are read and written only with `lock` held; the handler methods run on the
// connection's event loop, `watch` and `unwatch` on any thread.
final class ConnectionWatch: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny

    private let lock = Mutex()
    private var gone = false
    private var watchers: [ObjectIdentifier: @Sendable () -> Void] = [:]

    /// Every connection's watch, by channel, so a request can find its own from the channel in its context.
    private static let registry = Registry()

    /// The watch of `channel`'s connection (nil if it has none: a channel not made by this server).
    static func of(_ channel: any Channel) -> ConnectionWatch? { registry.get(ObjectIdentifier(channel)) }

    /// Calls `onGone` (once) when the client goes away while `flag` is registered: at once if it already has.
    func watch(_ flag: CancellationFlag, onGone: @escaping @Sendable () -> Void) {
        lock.lock()
        let already = gone
        if !already { watchers[ObjectIdentifier(flag)] = onGone }
        lock.unlock()
        if already { onGone() }
    }

    func unwatch(_ flag: CancellationFlag) {
        lock.lock()
        watchers[ObjectIdentifier(flag)] = nil
        lock.unlock()
    }

    private func clientWentAway() {
        lock.lock()
        gone = true
        let callbacks = Array(watchers.values)
        watchers.removeAll()
        lock.unlock()
        for c in callbacks { c() }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        ConnectionWatch.registry.set(ObjectIdentifier(context.channel), self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ConnectionWatch.registry.set(ObjectIdentifier(context.channel), nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { clientWentAway() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientWentAway()
        ConnectionWatch.registry.set(ObjectIdentifier(context.channel), nil)
        context.fireChannelInactive()
    }

    /// The watches of open connections.
    // @unchecked: `byChannel` is read and written only with `lock` held.
    final class Registry: @unchecked Sendable {
        private let lock = Mutex()
        private var byChannel: [ObjectIdentifier: ConnectionWatch] = [:]

        func get(_ id: ObjectIdentifier) -> ConnectionWatch? {
            lock.lock()
            defer { lock.unlock() }
            return byChannel[id]
        }

        func set(_ id: ObjectIdentifier, _ watch: ConnectionWatch?) {
            lock.lock()
            byChannel[id] = watch
            lock.unlock()
        }
    }
}
