import Foundation
import TesseraEngine
import TesseraModels
import XCTest

/// The memory check's parameter count, computed from a configuration alone, equals the built model's.
final class NetworkSizeTests: XCTestCase {
    func testParameterCountFromTheConfigurationEqualsTheBuiltModels() throws {
        let specs: [NetworkSpec] = [
            NetworkSpec(unet: UNetConfig(inChannels: 1, classes: 2, depth: 2, width: 4)),
            NetworkSpec(unet: UNetConfig(inChannels: 3, classes: 5, depth: 3, width: 6, batchNorm: false)),
            NetworkSpec(
                unet: UNetConfig(inChannels: 2, classes: 3, depth: 1, width: 5, upsampling: .bilinear, padding: .valid)),
            NetworkSpec(resnetUNet: ResNetUNetConfig(encoder: 18, inChannels: 1, classes: 3)),
            NetworkSpec(
                resnetUNet: ResNetUNetConfig(
                    encoder: 50, inChannels: 3, classes: 2, decoderChannels: [64, 32, 16, 8, 4]))
        ]
        for spec in specs {
            var g = RandomGenerator(seed: 1)
            let built = try spec.build(generator: &g).parameters.map(\.count).reduce(0, +)
            XCTAssertEqual(spec.parameterCount, built, "\(spec.arch) \(String(describing: spec.unet ?? nil))")
        }
        // A U-Net of depth 8 and width 1024 is refused before anything is built.
        let huge = NetworkSpec(unet: UNetConfig(inChannels: 1, classes: 2, depth: 8, width: 1024))
        XCTAssertGreaterThan(huge.parameterCount, 1 << 40)
        XCTAssertThrowsError(try huge.checkMemory(tile: 256))
        XCTAssertNoThrow(try NetworkSpec(unet: UNetConfig(depth: 4, width: 64)).checkMemory(tile: 1024))
    }
}
