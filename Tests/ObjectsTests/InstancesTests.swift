import Foundation
import TesseraObjects
import XCTest

final class InstancesTests: XCTestCase {
    /// Discs of `radius` at `centres` (class 1), in a `w` x `h` mask.
    func discs(_ centres: [(Double, Double)], radius: Double, width w: Int, height h: Int) -> [UInt16] {
        var mask = [UInt16](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                for (cx, cy) in centres
                where (Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)
                    <= radius * radius
                {
                    mask[y * w + x] = 1
                }
            }
        }
        return mask
    }

    func testWatershedSplitsTouchingDiscsAtTheirNeck() {
        let w = 80, h = 50
        // Two discs of radius 12 whose centres are 20 apart: one connected region with a neck 13 pixels wide.
        let mask = discs([(28, 25), (48, 25)], radius: 12, width: w, height: h)
        var settings = InstanceSettings()
        XCTAssertEqual(Instances(mask: mask, width: w, height: h, settings: settings).objects.count, 1)
        settings.method = .watershed
        let split = Instances(mask: mask, width: w, height: h, settings: settings)
        XCTAssertEqual(split.objects.count, 2)
        for (o, cx) in zip(split.objects, [28.0, 48.0]) {
            XCTAssertEqual(o.objectClass, 1)
            XCTAssertEqual(o.centroidX, cx, accuracy: 1.5)
            XCTAssertEqual(o.centroidY, 25, accuracy: 0.5)
        }
        XCTAssertEqual(split.objects[0].area, split.objects[1].area, accuracy: 30)
        // The cut runs down the neck: every pixel left of x = 37 is the left disc's, right of 39 the right's.
        for y in 0..<h {
            for x in 0..<w where mask[y * w + x] != 0 {
                if x < 37 { XCTAssertEqual(split.ids[y * w + x], 1) }
                if x > 39 { XCTAssertEqual(split.ids[y * w + x], 2) }
            }
        }
        // One disc, an ellipse and a rectangle are not split (their distance maps have one significant peak).
        var shapes = discs([(20, 25)], radius: 12, width: w, height: h)
        for y in 0..<h {
            for x in 0..<w {
                let ex = Double(x) - 58, ey = Double(y) - 14
                if ex * ex / 400 + ey * ey / 64 <= 1 { shapes[y * w + x] = 1 }
                if (34...75).contains(x) && (30...44).contains(y) { shapes[y * w + x] = 1 }
            }
        }
        XCTAssertEqual(Instances(mask: shapes, width: w, height: h, settings: settings).objects.count, 3)
        // Probability seeds: where the model's probability dips between two plateaus, the split follows the dip.
        var probability = [Float](repeating: 0, count: w * h)
        for i in probability.indices where mask[i] != 0 { probability[i] = abs(Float(i % w) - 38) < 2 ? 0.6 : 0.95 }
        settings.seeds = .probability
        let byProbability = Instances(
            mask: mask, width: w, height: h, settings: settings, probability: { _ in probability })
        XCTAssertEqual(byProbability.objects.count, 2)
    }

    func testHolesSmallObjectsAndBorders() {
        let w = 40, h = 30
        var mask = [UInt16](repeating: 0, count: w * h)
        for y in 5..<20 { for x in 5..<20 { mask[y * w + x] = 2 } }  // a square with a 3x3 hole
        for y in 10..<13 { for x in 10..<13 { mask[y * w + x] = 0 } }
        for y in 0..<4 { for x in 30..<40 { mask[y * w + x] = 1 } }  // on the border
        mask[25 * w + 5] = 1  // one pixel
        var settings = InstanceSettings()
        var found = Instances(mask: mask, width: w, height: h, settings: settings)
        XCTAssertEqual(found.objects.map(\.area), [40, 15 * 15 - 9, 1], "raster order of first pixels")
        XCTAssertEqual(found.counts(classes: 3), [0, 2, 1])
        settings.maxHole = 9
        found = Instances(mask: mask, width: w, height: h, settings: settings)
        XCTAssertEqual(found.objects.map(\.area), [40, 225, 1], "the 9-pixel hole filled")
        settings.maxHole = 8
        XCTAssertEqual(Instances(mask: mask, width: w, height: h, settings: settings).objects[1].area, 216)
        settings.minSize = 2
        settings.excludeBorder = true
        found = Instances(mask: mask, width: w, height: h, settings: settings)
        XCTAssertEqual(found.objects.map(\.area), [216])
        XCTAssertEqual(found.objects[0].id, 1)
        XCTAssertEqual(found.ids[25 * w + 5], 0)
        XCTAssertEqual(found.ids[0 * w + 35], 0)
    }

    /// ISBI-style data: class 0 is the membrane, the regions it encloses are the objects, 4- vs 8-connected.
    func testRegionsEnclosedByABoundaryClass() {
        let rows = [
            "11011",
            "11011",
            "00100",
            "11011"
        ]
        let mask = rows.flatMap { $0.map { UInt16(String($0))! } }
        var settings = InstanceSettings()
        XCTAssertEqual(Instances(mask: mask, width: 5, height: 4, settings: settings).objects.count, 1)
        settings.connectivity = .four
        XCTAssertEqual(Instances(mask: mask, width: 5, height: 4, settings: settings).objects.count, 5)
    }

    /// Two cells left and right of a vertical membrane (x = 20..22) with a gap at rows 14..17, where the membrane
    /// probability only falls to 0.4: at the argmax the cells are one region; the membrane method floods from one
    /// seed per cell, so it finds two, cut along the membrane, with every pixel in a cell. A 3-pixel speck of cell
    /// probability inside the membrane seeds nothing once `min_size` is 10.
    func testMembraneMethodKeepsCellsApartAcrossAGapAndLeavesNoBoundary() {
        let w = 40, h = 30
        var membrane = [Float](repeating: 0.02, count: w * h)
        for y in 0..<h {
            for x in 20...22 { membrane[y * w + x] = (14...17).contains(y) ? 0.4 : 0.97 }
            for x in 0..<w where y == 0 || y == h - 1 { membrane[y * w + x] = 0.97 }
        }
        let mask = membrane.map { UInt16($0 > 0.5 ? 0 : 1) }
        var settings = InstanceSettings()
        settings.connectivity = .four
        XCTAssertEqual(Instances(mask: mask, width: w, height: h, settings: settings).objects.count, 1)
        settings.method = .membrane
        let cells = Instances(
            mask: mask, width: w, height: h, settings: settings, probability: { _ in membrane })
        XCTAssertEqual(cells.objects.count, 2)
        XCTAssertFalse(cells.ids.contains(0), "every pixel belongs to a cell")
        XCTAssertEqual(cells.objects.map(\.objectClass), [1, 1])
        for y in 0..<h {
            XCTAssertEqual(cells.ids[y * w + 5], cells.ids[5], "row \(y)")
            XCTAssertEqual(cells.ids[y * w + 35], cells.ids[35], "row \(y)")
        }
        XCTAssertNotEqual(cells.ids[5], cells.ids[35])
        // A speck of cell inside the membrane: its own cell unless min_size drops it into a neighbour.
        var speckled = membrane
        for y in 6...8 { speckled[y * w + 21] = 0.05 }
        XCTAssertEqual(
            Instances(mask: mask, width: w, height: h, settings: settings, probability: { _ in speckled }).objects
                .count, 3)
        settings.minSize = 10
        let cleaned = Instances(mask: mask, width: w, height: h, settings: settings, probability: { _ in speckled })
        XCTAssertEqual(cleaned.objects.count, 2)
        XCTAssertFalse(cleaned.ids.contains(0))
        // A truth mask (no probabilities): the cells' regions, membrane left 0.
        let truth = Instances(mask: mask, width: w, height: h, settings: settings)
        XCTAssertEqual(truth.objects.count, 1)
        XCTAssertTrue(truth.ids.contains(0))
    }
}

final class SegmentationAgreementTests: XCTestCase {
    func testRandAndVIByHand() throws {
        // Truth two objects of 3 pixels; the prediction moves one pixel across: pairs (1,1) 2, (1,2) 1, (2,2) 3.
        let a = SegmentationAgreement(truth: [1, 1, 1, 2, 2, 2], prediction: [1, 1, 2, 2, 2, 2], width: 6, height: 1)
        // sum p^2 = 14/36, sum t^2 = 18/36, sum s^2 = 20/36: 1 - 14 / 19.
        XCTAssertEqual(try XCTUnwrap(a.randError), 5.0 / 19, accuracy: 1e-12)
        // H(pair) - H(t), H(pair) - H(s), in nats (by hand: -(1/3 ln 1/3 + 1/6 ln 1/6 + 1/2 ln 1/2) - ln 2 ...).
        XCTAssertEqual(try XCTUnwrap(a.viSplit), 0.318257084147406, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(a.viMerge), 0.374890096412539, accuracy: 1e-12)
        // Truth 0 is ignored; the prediction's 0 (its boundary) is thinned into its neighbours first:
        // [1, 0, 0, 2, 2] -> [1, 1, 2, 2, 2]; one true object split 2 + 3: 1 - (13/25) / (1/2 + 13/50) = 6/19.
        let thinned = SegmentationAgreement(
            truth: [0, 5, 5, 5, 5, 5, 0], prediction: [7, 1, 0, 0, 2, 2, 0], width: 7, height: 1)
        XCTAssertEqual(try XCTUnwrap(thinned.randError), 6.0 / 19, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(thinned.viMerge), 0, accuracy: 1e-12)
        XCTAssertNil(SegmentationAgreement(truth: [0, 0], prediction: [1, 1], width: 2, height: 1).randError)
    }

    func testLimitingCases() throws {
        // K true objects of n pixels each (N = K n).
        let k = 4, n = 25
        let truth = (0..<(k * n)).map { UInt32($0 / n + 1) }
        let same = SegmentationAgreement(truth: truth, prediction: truth.map { $0 + 10 }, width: k * n, height: 1)
        XCTAssertEqual(same.randError, 0)
        XCTAssertEqual(try XCTUnwrap(same.viSplit), 0, accuracy: 1e-12)
        XCTAssertEqual(same.averagePrecision, 1)
        XCTAssertEqual(same.objectF1At50, 1)
        // All merged: sum p^2 = sum t^2 = 1/K, sum s^2 = 1: error (K - 1) / (K + 1); VI merge ln K, split 0.
        let merged = SegmentationAgreement(
            truth: truth, prediction: [UInt32](repeating: 1, count: k * n), width: k * n, height: 1)
        XCTAssertEqual(try XCTUnwrap(merged.randError), Double(k - 1) / Double(k + 1), accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(merged.viMerge), log(Double(k)), accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(merged.viSplit), 0, accuracy: 1e-12)
        XCTAssertEqual(merged.objectF1At50, 0)
        // All split (one object a pixel): sum s^2 = 1/N: error (N - K) / (N + K); VI split ln n, merge 0.
        let split = SegmentationAgreement(
            truth: truth, prediction: (0..<(k * n)).map { UInt32($0 + 1) }, width: k * n, height: 1)
        XCTAssertEqual(try XCTUnwrap(split.randError), Double(k * n - k) / Double(k * n + k), accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(split.viSplit), log(Double(n)), accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(split.viMerge), 0, accuracy: 1e-12)
    }

    func testObjectMatching() throws {
        // Two true 4x4 squares; the prediction has the first exactly and the second shifted by 2 (IoU 8/24),
        // plus a false object: TP 1, FP 2, FN 1 at every threshold.
        let w = 20, h = 6
        var truth = [UInt32](repeating: 0, count: w * h), prediction = truth
        for y in 1..<5 {
            for x in 1..<5 { truth[y * w + x] = 1; prediction[y * w + x] = 3 }
            for x in 8..<12 { truth[y * w + x] = 2 }
            for x in 10..<14 { prediction[y * w + x] = 1 }
        }
        prediction[0 * w + 18] = 2
        let a = SegmentationAgreement(truth: truth, prediction: prediction, width: w, height: h)
        XCTAssertEqual(try XCTUnwrap(a.objectPrecision50), 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(a.objectRecall50), 0.5, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(a.objectF1At50), 2.0 / 5, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(a.averagePrecision), 1.0 / 4, accuracy: 1e-12)
        // Shifted by 1 instead (IoU 12/20 = 0.6): a match at 0.5 and 0.55 only.
        for y in 1..<5 {
            for x in 9..<14 { prediction[y * w + x] = x < 13 ? 1 : 0 }
        }
        let b = SegmentationAgreement(truth: truth, prediction: prediction, width: w, height: h)
        XCTAssertEqual(try XCTUnwrap(b.objectF1At50), 4.0 / 5, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(b.averagePrecision), (2 * (2.0 / 3) + 8 * (1.0 / 4)) / 10, accuracy: 1e-12)
        // Class-aware: the same pixels of another class do not match.
        let c = SegmentationAgreement(
            truth: truth, prediction: prediction, width: w, height: h, truthClasses: [1, 1],
            predictionClasses: [1, 1, 2])
        XCTAssertEqual(try XCTUnwrap(c.objectF1At50), 2.0 / 5, accuracy: 1e-12, "object 3 (class 2) no longer matches")
        XCTAssertEqual(SegmentationAgreement.mean([["a": 1], ["a": 3, "b": 2]]), ["a": 2, "b": 2])
    }
}
