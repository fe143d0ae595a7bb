import Foundation
import TesseraEngine
import TesseraModels
import TesseraNN
import XCTest

final class ResNetTests: XCTestCase {
    /// Parameter counts of torchvision's resnet18...resnet152 with 1000 classes, and their key layout.
    func testTorchvisionLayoutAndParameterCounts() {
        let expected = [18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808]
        for (depth, count) in expected.sorted(by: { $0.key < $1.key }) {
            var g = RandomGenerator(seed: 1)
            let model = ResNet(ResNetConfig(depth: depth, classes: 1000), generator: &g)
            let names = model.namedParameters().map(\.name)
            XCTAssertEqual(model.parameters.map(\.count).reduce(0, +), count, "resnet\(depth)")
            XCTAssertTrue(names.contains("layer2.0.downsample.0.weight"), "resnet\(depth)")
            XCTAssertEqual(names.contains("layer1.0.conv3.weight"), depth >= 50, "resnet\(depth) bottleneck")
            XCTAssertEqual(names.contains("layer1.0.downsample.0.weight"), depth >= 50)
            XCTAssertTrue(model.namedBuffers().map(\.name).contains("bn1.running_mean"))
        }
    }

    func testClassifierAndEncoderShapes() {
        var g = RandomGenerator(seed: 2)
        let model = ResNet(ResNetConfig(depth: 50, inChannels: 1, classes: 7), generator: &g)
        model.eval()
        let x = Tensor.randn([2, 1, 64, 96], generator: &g)
        XCTAssertEqual(withNoGrad { model(x) }.shape, [2, 7])
        let features = withNoGrad { model.features(x) }
        XCTAssertEqual(
            features.map(\.shape),
            [[2, 64, 32, 48], [2, 256, 16, 24], [2, 512, 8, 12], [2, 1024, 4, 6], [2, 2048, 2, 3]])
        let encoder = ResNet(ResNetConfig(depth: 18, classes: 0), generator: &g)
        XCTAssertNil(encoder.fc)
        XCTAssertFalse(encoder.namedParameters().contains { $0.name.hasPrefix("fc") })
    }
}
