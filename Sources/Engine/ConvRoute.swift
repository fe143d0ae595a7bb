import Foundation

/// The ways the convolution core can compute one pass. Which is fastest depends on the layer's shape and on the
/// machine (vector width, cache sizes), so the choice is made by measurement (`ConvPlanCache`), not by rule.
public enum ConvRoute: String, CaseIterable, Codable, Sendable {
    /// Stride-1 2-d convolutions: source rows copied once per band into a zero-padded buffer that the packed
    /// micro-kernel reads directly (no im2col).
    case rowBand = "row-band"
    /// Bounded im2col tiles packed for the micro-kernel: every geometry (strided, 3-d, transposed, dilated).
    case im2col
    /// Transposed products (the input gradient of a strided convolution, a transposed convolution): a GEMM of
    /// the weights with the source into columns, scattered into the output (col2im). Its gathering work grows
    /// with the source, not with the output times the kernel as im2col's does: a 7x7 stride-2 stem's input
    /// gradient through im2col reads 49 taps per output pixel, 3/4 of them zero.
    case col2im
    /// Weight gradient over row bands with the row-reduction ("dot") kernel: few output channels.
    case rowBandDot = "row-band-dot"
    /// Weight gradient over row bands with both operands transposed into packed panels: many output channels.
    case rowBandPacked = "row-band-packed"
    /// Stride-1 3x3 2-d products by Winograd's F(4x4, 3x3): 36 multiply-adds per 4x4 tile and input channel
    /// instead of 144, plus the tile transforms (`WinogradPlan`).
    case winograd
    /// 1x1 stride-1 products of a batch as one GEMM over every image's pixels (the images' planes gathered side by
    /// side): a 7x7 layer's 49 pixels per image fill one 48-column panel and one nearly empty one.
    case batchedGEMM = "batched-gemm"

    /// Routes that compute a forward-style pass (forward, input gradient, transposed forward).
    public static let productRoutes: [ConvRoute] = [.rowBand, .im2col, .col2im, .winograd, .batchedGEMM]
    /// Routes that compute a weight gradient.
    public static let weightGradientRoutes: [ConvRoute] = [.rowBandDot, .rowBandPacked, .im2col, .winograd]

    /// A route forced for the current task (tests compare every route on the same layer; benchmarks time each).
    /// Where the forced route does not apply to a layer's pass, the measured choice is used.
    @TaskLocal public static var forced: ConvRoute?

    /// Runs `body` with every convolution pass that can take `route` taking it.
    public static func forcing<R>(_ route: ConvRoute?, _ body: () throws -> R) rethrows -> R {
        try $forced.withValue(route, operation: body)
    }

    /// `body`'s result and the routes its convolution passes took (tests check that a forced route applied).
    public static func taken<R>(_ body: () throws -> R) rethrows -> (result: R, routes: Set<ConvRoute>) {
        let log = Log()
        let result = try $log.withValue(log, operation: body)
        return (result, log.routes)
    }

    @TaskLocal static var log: Log?

    /// Routes taken, recorded where a pass runs its chosen route.
    // @unchecked: the set is read and written only under `lock`.
    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var taken = Set<ConvRoute>()
        var routes: Set<ConvRoute> { lock.withLock { taken } }
        func record(_ route: ConvRoute) { lock.withLock { _ = taken.insert(route) } }
    }
}

/// Which family of algorithms a product may use (`TESSERA_CONV_ALGO`): `direct` keeps to the direct routes
/// (row band, im2col, col2im), `winograd` takes Winograd wherever it applies; unset, the plan measures both.
public enum ConvAlgorithm: String, CaseIterable, Sendable {
    case direct, winograd
}

/// Which pass of a convolution a plan is for.
enum ConvPass: String, Sendable {
    case product, weightGradient = "weight-gradient"
}
