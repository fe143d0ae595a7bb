import Foundation
import TesseraEngine
import TestSupport
import XCTest

/// Walks every case of every operator fixture file (TESSERA_TORCH_FIXTURES) and checks forward and gradients.
final class TorchParityTests: XCTestCase {
    func testEveryFixtureCase() throws {
        let files = try SharedFixtures.operatorFiles()
        XCTAssertFalse(files.isEmpty, "no operator fixture files found")
        var checked = 0
        for file in files {
            let op = file.metadata["op"]!
            for c in try FixtureCase.all(in: file) {
                let label = "\(URL(fileURLWithPath: file.file).lastPathComponent):\(c.name)"
                guard let runner = OperatorRunners.runner(for: op) else {
                    XCTFail("\(label): no runner for op family '\(op)'")
                    continue
                }
                let compared = try runner(c, label)
                XCTAssertGreaterThan(compared, 0, "\(label): nothing compared")
                checked += 1
            }
        }
        print("parity: checked \(checked) cases in \(files.count) files")
    }
}

/// Maps an op family to a function that runs one case and compares every tensor it has.
enum OperatorRunners {
    typealias Runner = (FixtureCase, String) throws -> Int

    static func runner(for op: String) -> Runner? {
        switch op {
        case "conv1d", "conv2d", "conv3d": return convolution
        case "conv_transpose2d", "conv_transpose1d", "conv_transpose3d": return transposedConvolution
        default: return nil
        }
    }

    /// Compares output and each gradient role present; returns how many tensors were compared.
    static func compare(_ c: FixtureCase, _ label: String, output: Tensor, inputs: [(role: String, tensor: Tensor)]) -> Int {
        var n = 0
        if let expected = c.tensor("output") {
            assertClose(output, expected, "\(label) output"); n += 1
        }
        guard let gradOutput = c.tensor("grad_output") else { return n }
        output.backward(gradOutput)
        for (role, t) in inputs {
            guard let expected = c.tensor("grad_\(role)") else { continue }
            guard let g = t.grad else { XCTFail("\(label): no gradient for \(role)"); continue }
            assertClose(g, expected, "\(label) grad_\(role)"); n += 1
        }
        return n
    }

    static func leaf(_ c: FixtureCase, _ role: String) -> Tensor? {
        guard let t = c.tensor(role) else { return nil }
        t.requiresGrad = true
        return t
    }

    static func padding(_ c: FixtureCase) -> Padding {
        switch c.string("padding") {
        case "same": return .same
        case "valid": return .valid
        case "full": return .full
        default: return .explicit(c.ints("padding") ?? [0])
        }
    }

    static func convolution(_ c: FixtureCase, _ label: String) throws -> Int {
        let x = leaf(c, "input")!, w = leaf(c, "weight")!, b = leaf(c, "bias")
        let mode = PaddingMode(rawValue: c.string("padding_mode") ?? "zeros") ?? .zeros
        let y = Functional.conv(x, weight: w, bias: b, stride: c.ints("stride") ?? [1], padding: padding(c),
                                dilation: c.ints("dilation") ?? [1], groups: c.int("groups", default: 1),
                                paddingMode: mode)
        return compare(c, label, output: y, inputs: [("input", x), ("weight", w)] + (b.map { [("bias", $0)] } ?? []))
    }

    static func transposedConvolution(_ c: FixtureCase, _ label: String) throws -> Int {
        let x = leaf(c, "input")!, w = leaf(c, "weight")!, b = leaf(c, "bias")
        let y = Functional.convTranspose(x, weight: w, bias: b, stride: c.ints("stride") ?? [1],
                                         padding: c.ints("padding") ?? [0],
                                         outputPadding: c.ints("output_padding") ?? [0],
                                         groups: c.int("groups", default: 1), dilation: c.ints("dilation") ?? [1])
        return compare(c, label, output: y, inputs: [("input", x), ("weight", w)] + (b.map { [("bias", $0)] } ?? []))
    }
}
