import Foundation
import TesseraConsole
import TesseraData
import TesseraEngine
import TesseraExplain
import TesseraInference
import TesseraModels
import TesseraNN
import TestSupport
import XCTest

/// The attribution methods against closed forms, on degenerate maps, and on a classifier that must look at the
/// object it names.
final class GradCAMTests: XCTestCase {
    /// At ResNet's `layer4` the logit is fc . mean(A), so d logit_c / dA_k = fc[c, k] / (h w) everywhere: Grad-CAM's
    /// weights, Grad-CAM++'s and Layer-CAM's maps follow in closed form from the fc row and the activations.
    func testMethodsAtTheLastStageMatchTheirClosedForms() throws {
        var g = RandomGenerator(seed: 5)
        let model = ResNet(ResNetConfig(depth: 18, inChannels: 1, classes: 4, width: 8), generator: &g)
        model.eval()
        let x = Tensor.randn([1, 1, 96, 96], generator: &g)
        let a = withNoGrad { model.features(x).last! }
        let (k, h, w) = (a.shape[1], a.shape[2], a.shape[3])
        let av = a.scalars, fc = model.namedParameters().first { $0.name == "fc.weight" }!.tensor.scalars
        let c = 2
        let grad = (0..<k).map { fc[c * k + $0] / Float(h * w) }
        func closedMap(_ weight: (Int) -> Float, perPosition: Bool) -> [Float] {
            (0..<(h * w)).map { i in
                max(
                    0,
                    (0..<k).reduce(Float(0)) { s, j in
                        s + (perPosition ? max(grad[j], 0) : weight(j)) * av[j * h * w + i]
                    })
            }
        }
        let gradcam = try GradCAM(method: .gradcam, layer: "layer4").explain(
            model: model, input: x, target: .classLogit(c))
        assertClose(
            Tensor(gradcam.weights, shape: [k]), Tensor(grad, shape: [k]), atol: 1e-6, rtol: 1e-4, "gradcam weights")
        assertClose(
            gradcam.cam, Tensor(closedMap({ grad[$0] }, perPosition: false), shape: [h, w]), atol: 1e-5, rtol: 1e-4,
            "gradcam map")

        let plusWeights = (0..<k).map { j -> Float in
            let d = grad[j], s = (0..<(h * w)).reduce(Float(0)) { $0 + av[j * h * w + $1] }
            return d == 0 ? 0 : Float(h * w) * max(d, 0) * d * d / (2 * d * d + s * d * d * d + 1e-6)
        }
        let plus = try GradCAM(method: .gradcamPlusPlus, layer: "layer4").explain(
            model: model, input: x, target: .classLogit(c))
        assertClose(
            Tensor(plus.weights, shape: [k]), Tensor(plusWeights, shape: [k]), atol: 1e-6, rtol: 1e-3,
            "gradcam++ weights")
        assertClose(
            plus.cam, Tensor(closedMap({ plusWeights[$0] }, perPosition: false), shape: [h, w]), atol: 1e-5, rtol: 1e-3,
            "gradcam++ map")

        let layer = try GradCAM(method: .layercam, layer: "layer4").explain(
            model: model, input: x, target: .classLogit(c))
        XCTAssertTrue(layer.weights.isEmpty)
        assertClose(
            layer.cam, Tensor(closedMap({ _ in 0 }, perPosition: true), shape: [h, w]), atol: 1e-5, rtol: 1e-4,
            "layercam map")

        // The heatmap is the map stretched over the input (3x3 -> 96x96) and scaled to [0, 1].
        XCTAssertEqual(gradcam.heatmap.count, 96 * 96)
        XCTAssertEqual(gradcam.heatmap.max()!, 1, accuracy: 1e-5)
        XCTAssertEqual(gradcam.heatmap.min()!, 0, accuracy: 1e-6)
    }

    /// With every channel weight negative (the fc row of the class made negative) the weighted sum of the
    /// non-negative `layer4` activations is <= 0 everywhere: the map is zero, the heatmap all zeros, never NaN.
    func testAllNegativeWeightsGiveAZeroHeatmapNotNaN() throws {
        var g = RandomGenerator(seed: 6)
        let model = ResNet(ResNetConfig(depth: 18, inChannels: 1, classes: 3, width: 8), generator: &g)
        let fc = model.namedParameters().first { $0.name == "fc.weight" }!.tensor
        var v = fc.scalars
        let k = fc.shape[1]
        for j in 0..<k { v[k + j] = -abs(v[k + j]) - 1e-3 }
        fc.assign(Tensor(v, shape: fc.shape))
        let x = Tensor.randn([1, 1, 64, 64], generator: &g)
        for method in [CAMMethod.gradcam, .layercam, .gradcamPlusPlus] {
            let r = try GradCAM(method: method, layer: "layer4").explain(model: model, input: x, target: .classLogit(1))
            XCTAssertTrue(r.isZero, method.rawValue)
            XCTAssertTrue(r.heatmap.allSatisfy { $0 == 0 }, method.rawValue)
        }
        // A class with positive weights on the same input is not zero.
        for j in 0..<k { v[j] = abs(v[j]) + 1e-3 }
        fc.assign(Tensor(v, shape: fc.shape))
        let positive = try GradCAM(layer: "layer4").explain(model: model, input: x, target: .classLogit(0))
        XCTAssertFalse(positive.isZero)
        XCTAssertFalse(positive.heatmap.contains { $0.isNaN })
    }

    /// Occlusion of a model whose logit is the sum of the pixels in a box: a patch lowers it by the box pixels it
    /// covers, so the map is positive exactly where covering patches meet the box and peaks inside it.
    func testOcclusionFindsTheOnlyPixelsThatMatter() throws {
        final class BoxSum: Module {
            let mask: Tensor
            init(size: Int, box: PixelWindow) {
                var m = [Float](repeating: 0, count: size * size)
                for y in box.y..<(box.y + box.height) { for x in box.x..<(box.x + box.width) { m[y * size + x] = 1 } }
                mask = Tensor(m, shape: [1, 1, size, size])
                super.init()
                registerParameter("scale", Tensor([1], shape: [1]))
            }
            override func forward(_ x: Tensor) -> Tensor { (x * mask).sum(axes: [1, 2, 3]).reshaped([x.shape[0], 1]) }
        }
        let box = PixelWindow(x: 20, y: 8, width: 6, height: 10)
        let model = BoxSum(size: 40, box: box)
        let r = try GradCAM(method: .occlusion, layer: "", patch: 4, stride: 2)
            .explain(model: model, input: Tensor.ones([1, 1, 40, 40]), target: .classLogit(0))
        XCTAssertEqual(r.score, 60)
        let peak = ExplainRun.peak(r.heatmap, width: 40)
        XCTAssertTrue((20.0..<26.0).contains(peak.x) && (8.0..<18.0).contains(peak.y), "peak \(peak)")
        for y in 0..<40 {
            for x in 0..<40 {
                // Patches start at even offsets and are 4 wide: the pixel's patches reach at most 3 beyond it.
                let near = x >= box.x - 3 && x < box.x + box.width + 3 && y >= box.y - 3 && y < box.y + box.height + 3
                if !near { XCTAssertEqual(r.heatmap[y * 40 + x], 0, "(\(x), \(y))") }
                if box.x <= x && x < box.x + box.width && box.y <= y && y < box.y + box.height {
                    XCTAssertGreaterThan(r.heatmap[y * 40 + x], 0, "(\(x), \(y))")
                }
            }
        }
    }

    /// A ResNet trained on the generated shapes (one object at a random place per 128x128 image): its Grad-CAM
    /// peak for the predicted class lies inside the object's bounding box in at least 90% of unseen images, at the
    /// default layer (`layer4`, 4x4) and at `layer3` (8x8), and Grad-CAM++ and Layer-CAM at `layer4` in at least
    /// 85%. The trivial baseline, a peak at a random place, lands in the box as often as the boxes' mean share of
    /// the image (0.21 here); every bar is also required to beat it by 0.5.
    func testClassifierGradCAMPeaksInsideTheObject() throws {
        let (model, size, seed) = ShapeClassifier.trained
        let validation = (1_000_000..<1_000_200).map { ShapeSample(size: size, seed: seed, index: $0) }
        let baseline =
            validation.map { Double($0.box.width * $0.box.height) / Double(size * size) }.reduce(0, +)
            / Double(validation.count)
        let bars: [CAMMethod: Double] = [.gradcam: 0.9, .gradcamPlusPlus: 0.85, .layercam: 0.85]
        for (layer, method) in [
            ("layer4", CAMMethod.gradcam), ("layer3", .gradcam), ("layer4", .gradcamPlusPlus), ("layer4", .layercam)
        ] {
            var hits = 0
            for s in validation {
                let x = ShapeClassifier.normalised(Tensor(s.pixels, shape: [1, 1, size, size]))
                let predicted = Int(withNoGrad { model(x) }.argmax(axis: 1).scalars[0])
                let r = try GradCAM(method: method, layer: layer).explain(
                    model: model, input: x, target: .classLogit(predicted))
                if ShapeClassifier.contains(s.box, ExplainRun.peak(r.heatmap, width: size)) { hits += 1 }
            }
            let share = Double(hits) / Double(validation.count)
            print(
                "shapes ResNet-18: \(method.rawValue) peak at \(layer) inside the box in \(hits) of \(validation.count) "
                    + "images (random peak: \(String(format: "%.3f", baseline)))")
            XCTAssertGreaterThanOrEqual(share, bars[method] ?? 1, "\(method.rawValue) at \(layer)")
            XCTAssertGreaterThanOrEqual(share, baseline + 0.5, "\(method.rawValue) at \(layer)")
        }
    }

    /// `tessera explain` on a classifier: the ResNet saved as a torchvision-named state dict (normalisation in its
    /// metadata), shape images as PNG; the report names the predicted class and a peak inside each object, the
    /// outputs decode, a rerun skips them, and an unreadable file is reported while the others go on.
    func testExplainRunOnAClassifierFolder() throws {
        let (model, size, seed) = ShapeClassifier.trained
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-explain-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let images = root.appendingPathComponent("images"), out = root.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        let samples = (2_000_000..<2_000_012).map { ShapeSample(size: size, seed: seed, index: $0) }
        for (i, s) in samples.enumerated() {
            let bytes = s.pixels.map { UInt8(max(0, min(255, ($0 * 255).rounded()))) }
            try ImageCodec.write(
                Image(width: size, height: size, channels: 1, samples: .uint8(bytes)),
                to: images.appendingPathComponent(String(format: "shape%02d.png", i)))
        }
        try Data("not a png".utf8).write(to: images.appendingPathComponent("broken.png"))
        let weights = root.appendingPathComponent("shapes-resnet18.safetensors")
        try SafeTensorsFile.write(
            model.stateDict(),
            metadata: [
                "mean": "[0.4]", "std": "[0.3]",
                "classes": "[\"square\",\"disc\",\"triangle\",\"cross\"]"
            ],
            to: weights)
        var options = ExplainOptions()
        options.colormap = .turbo
        let run = try ExplainRun(model: weights, options: options, out: out)
        run.console = .quiet
        let summary = try run.run(inputs: [images.path])
        XCTAssertEqual(summary.records.count, 13)
        XCTAssertEqual(summary.records.first { $0.path == "broken.png" }?.status, .failed)
        XCTAssertTrue(summary.records.first { $0.path == "broken.png" }?.error?.contains("broken.png") ?? false)
        var hits = 0
        for (i, s) in samples.enumerated() {
            let r = try XCTUnwrap(summary.records.first { $0.path == String(format: "shape%02d.png", i) })
            XCTAssertEqual(r.status, .done)
            XCTAssertEqual(r.layer, "layer4")
            let x = ShapeClassifier.normalised(Tensor(s.pixels, shape: [1, 1, size, size]))
            XCTAssertEqual(r.classIndex, Int(withNoGrad { model(x) }.argmax(axis: 1).scalars[0]))
            XCTAssertEqual(r.className, ["square", "disc", "triangle", "cross"][r.classIndex!])
            if ShapeClassifier.contains(s.box, (r.peakX!, r.peakY!)) { hits += 1 }
            let heat = try ImageCodec.decode(run.outputURL(.heatmap, relative: r.path))
            let raw = try ImageCodec.decode(run.outputURL(.raw, relative: r.path))
            XCTAssertEqual([heat.width, heat.channels, raw.bitDepth], [size, 3, 16])
            XCTAssertEqual(try ImageCodec.info(of: run.outputURL(.overlay, relative: r.path)).width, size)
        }
        XCTAssertGreaterThanOrEqual(hits, 10, "peaks inside the object (a random place: about 21%, 2.5 of 12)")
        let csv = try String(contentsOf: out.appendingPathComponent("report.csv"), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 14)
        XCTAssertTrue(csv.hasPrefix("path,status,width,height,layer,class,class_name,score"))

        let again = try ExplainRun(model: weights, options: options, out: out)
        again.console = .quiet
        let second = try again.run(inputs: [images.path])
        XCTAssertEqual(second.records.filter { $0.status == .existing }.count, 12)
        XCTAssertEqual(second.failed, 1)
    }
}

/// Trains a classifier on the generated shapes set with Adam.
enum ShapeClassifier {
    /// A width-8 ResNet-18 trained once per test run on 2400 shape images of 128x128 for 3 epochs. Two were
    /// marginal: validation accuracy 0.73-1.0 depending on which convolution routes a cold plan cache timed (forced
    /// im2col 0.83, its Grad-CAM peaks 0.87 in the box); three give 0.99-1.0 and 0.94-0.99 on every route.
    // The tests read it one at a time (XCTest runs them serially); the model is only evaluated after training.
    nonisolated(unsafe) static let trained: (model: ResNet, size: Int, seed: UInt64) = {
        var g = RandomGenerator(seed: 3)
        let model = ResNet(ResNetConfig(depth: 18, inChannels: 1, classes: 4, width: 8), generator: &g)
        let accuracy = train(model, size: 128, samples: 2400, epochs: 3, seed: 21)
        print("shapes ResNet-18 (width 8, 128x128): validation accuracy \(accuracy)")
        return (model, 128, 21)
    }()

    /// Whether a peak (pixel centres) lies in the box.
    static func contains(_ b: PixelWindow, _ p: (x: Double, y: Double)) -> Bool {
        Double(b.x) <= p.x && p.x <= Double(b.x + b.width - 1) && Double(b.y) <= p.y
            && p.y <= Double(b.y + b.height - 1)
    }

    /// About zero mean and unit spread, as the loader normalises images.
    static func normalised(_ x: Tensor) -> Tensor { (x - 0.4) * (1 / 0.3) }

    /// Trains for `epochs` over `samples` and returns the accuracy on 200 unseen ones.
    static func train(_ model: Module, size: Int, samples: Int, epochs: Int, seed: UInt64, batch: Int = 32) -> Double {
        let train = ShapeSample.batch(size: size, seed: seed, range: 0..<samples)
        let pixels = normalised(train.images).scalars, labels = train.labels.scalars, plane = size * size
        let optimizer = Adam(model.parameters, learningRate: 2e-3)
        var order = Array(0..<samples)
        var g = RandomGenerator(seed: seed)
        for epoch in 0..<epochs {
            model.train()
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, g.nextInt(i + 1)) }
            for s in 0..<(samples / batch) {
                let idx = Array(order[(s * batch)..<((s + 1) * batch)])
                let x = Tensor(idx.flatMap { pixels[($0 * plane)..<(($0 + 1) * plane)] }, shape: [batch, 1, size, size])
                optimizer.zeroGrad()
                Functional.crossEntropy(model(x), target: Tensor(idx.map { labels[$0] }, shape: [batch])).backward()
                optimizer.step()
            }
            optimizer.learningRate *= 0.5 + 0.5 * Float(epochs - epoch - 1) / Float(epochs)
        }
        model.eval()
        let val = ShapeSample.batch(size: size, seed: seed, range: 1_000_000..<1_000_200)
        let predicted = withNoGrad { model(normalised(val.images)) }.argmax(axis: 1).scalars
        return Double(zip(predicted, val.labels.scalars).filter { $0 == $1 }.count) / Double(val.labels.count)
    }
}
