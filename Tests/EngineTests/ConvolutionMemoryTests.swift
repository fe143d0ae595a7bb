import Foundation
import TesseraEngine
import XCTest

/// The tiled core's memory does not grow with an im2col of the whole image.
final class ConvolutionMemoryTests: XCTestCase {
    /// Resets the kernel's peak-RSS mark (VmHWM) for this process; false where unsupported.
    func resetPeak() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        h.write(Data("5".utf8))
        try? h.close()
        return true
    }

    func peakMB() -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return (line.split(separator: " ").compactMap { Double($0) }.first ?? 0) / 1024
    }

    func testLargeConvolutionStaysWithinBandScratch() throws {
        // 16 x 2048 x 2048 input (256 MB) and output (256 MB); a full im2col would add 16*9*4M*4 B = 2.4 GB.
        let c = 16, side = 2048
        var g = RandomGenerator(seed: 1)
        let x = Tensor(zeros: [1, c, side, side], zeroed: false)
        for i in stride(from: 0, to: x.count, by: 97) { x.pointer[i] = g.nextNormal() }
        let w = Tensor.randn([c, c, 3, 3], generator: &g)
        guard resetPeak() else { throw XCTSkip("cannot reset peak RSS on this kernel") }
        let before = peakMB()
        let y = withNoGrad { Functional.conv(x, weight: w, padding: .same) }
        let grown = peakMB() - before
        XCTAssertEqual(y.shape, [1, c, side, side])
        // Output (256 MB) plus bounded per-worker band scratch; far below the 2.4 GB of an im2col.
        XCTAssertLessThan(grown, 256 + 200, "convolution grew peak RSS by \(grown) MB")
        // Spot-check one interior output against a direct sum.
        let (oy, ox, co) = (1000, 1234, 5)
        var expected: Float = 0
        for ci in 0..<c {
            for ky in 0..<3 {
                for kx in 0..<3 {
                    expected +=
                        x.pointer[(ci * side + oy + ky - 1) * side + ox + kx - 1]
                        * w.pointer[((co * c + ci) * 3 + ky) * 3 + kx]
                }
            }
        }
        XCTAssertEqual(y.pointer[(co * side + oy) * side + ox], expected, accuracy: 1e-4 + 1e-4 * Swift.abs(expected))
    }
}
