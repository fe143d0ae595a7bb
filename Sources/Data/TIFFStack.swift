import Foundation
import TesseraEngine

/// How the pages of a multi-page TIFF become images.
public enum TIFFPages: String, CaseIterable, Codable, Sendable {
    /// OME-TIFF: its channels (C) are channels and its Z and T planes are slices, in its DimensionOrder; other
    /// files: every page of the first page's size and layout is a slice (thumbnails and pyramid levels skipped).
    case auto
    /// Every page is an image of its own.
    case slices
    /// The pages of the first page's size are the channels of one image.
    case channels
}

/// The images (slices) of a TIFF file and the pages whose channels each one stacks.
public struct TIFFStack: Sendable {
    public let width: Int, height: Int
    /// Channels of one slice: the channels of its pages, in page order.
    public let channels: Int
    public let bitDepth: Int
    /// Pages of each slice, in channel order.
    public let slices: [[Int]]
    /// Channel names from OME-TIFF metadata, or empty.
    public let channelNames: [String]
    public let lastIsAlpha: Bool

    public init(_ file: TIFFFile, pages mode: TIFFPages) throws {
        let first = try file.page(0)
        width = first.width
        height = first.height
        bitDepth = first.bitDepth
        var same: [Int] = []
        for p in 0..<file.pageCount {
            let page = p == 0 ? first : try file.page(p)
            if page.width == first.width && page.height == first.height && page.channels == first.channels
                && page.bitDepth == first.bitDepth
            {
                same.append(p)
            } else if mode == .slices {
                throw FileError(
                    file: file.file,
                    reason: "page \(p + 1) is \(page.width)x\(page.height), \(page.channels) channels, "
                        + "\(page.bitDepth)-bit; page 1 is \(first.width)x\(first.height), \(first.channels), "
                        + "\(first.bitDepth)-bit: slices must agree")
            }
        }
        let ome = mode == .auto ? first.description.flatMap(OMEPixels.init) : nil
        switch (mode, ome) {
        case (.slices, _):
            slices = same.map { [$0] }
            channelNames = []
        case (.channels, _):
            slices = [same]
            channelNames = []
        case (.auto, let ome?):
            guard let order = ome.slices(pagesPerChannel: first.channels, pages: file.pageCount) else {
                throw FileError(
                    file: file.file,
                    reason: "the OME-TIFF metadata (\(ome.sizeC) channels, \(ome.sizeZ) z, \(ome.sizeT) t, "
                        + "\(ome.order)) does not match its \(file.pageCount) pages")
            }
            slices = order
            channelNames = ome.channelNames
        case (.auto, nil):
            slices = same.map { [$0] }
            channelNames = []
        }
        channels = (slices.first?.count ?? 1) * first.channels
        lastIsAlpha = slices.first?.count == 1 && first.lastIsAlpha
    }

    /// Rows `rows` of slice `slice`: its pages' rows side by side, channel after channel.
    public func rows(_ rows: Range<Int>, slice: Int, of file: TIFFFile) throws -> Image {
        try window(PixelWindow(x: 0, y: rows.lowerBound, width: width, height: rows.count), slice: slice, of: file)
    }

    /// The pixels of `window` of slice `slice`: its pages' channels side by side.
    public func window(_ window: PixelWindow, slice: Int, of file: TIFFFile) throws -> Image {
        let pages = slices[slice]
        if pages.count == 1 { return try file.window(window, page: pages[0]) }
        let parts = try pages.map { try file.window(window, page: $0) }
        let n = window.width * window.height, per = parts[0].channels
        func merge<T>(_ arrays: [[T]], zero: T) -> [T] {
            var out = [T](repeating: zero, count: n * channels)
            for (k, a) in arrays.enumerated() {
                for p in 0..<n { for c in 0..<per { out[p * channels + k * per + c] = a[p * per + c] } }
            }
            return out
        }
        let samples: Image.Samples
        switch parts[0].samples {
        case .uint8:
            samples = .uint8(merge(parts.map { if case .uint8(let v) = $0.samples { v } else { [] } }, zero: 0))
        case .uint16:
            samples = .uint16(merge(parts.map { if case .uint16(let v) = $0.samples { v } else { [] } }, zero: 0))
        case .float32:
            samples = .float32(merge(parts.map { if case .float32(let v) = $0.samples { v } else { [] } }, zero: 0))
        }
        return Image(width: window.width, height: window.height, channels: channels, samples: samples)
    }
}

/// The parts of OME-XML (an OME-TIFF's first ImageDescription) that say which page holds which plane.
struct OMEPixels: Equatable {
    var order: String
    var sizeC: Int, sizeZ: Int, sizeT: Int
    var channelNames: [String]

    init?(_ xml: String) {
        guard xml.contains("<OME"), let pixels = OMEPixels.element("Pixels", in: xml),
            let order = OMEPixels.attribute("DimensionOrder", in: pixels), order.count == 5, order.hasPrefix("XY"),
            Set(order.dropFirst(2)) == ["Z", "C", "T"]
        else { return nil }
        self.order = order
        func size(_ name: String) -> Int {
            OMEPixels.attribute(name, in: pixels).flatMap { Int($0) }.map { max(1, $0) } ?? 1
        }
        sizeC = size("SizeC")
        sizeZ = size("SizeZ")
        sizeT = size("SizeT")
        var names: [String] = []
        var rest = xml[...]
        while let r = rest.range(of: "<Channel ") ?? rest.range(of: "<ome:Channel ") {
            let tag = rest[r.lowerBound...].prefix { $0 != ">" }
            names.append(OMEPixels.attribute("Name", in: String(tag)) ?? "")
            rest = rest[r.upperBound...]
        }
        channelNames = names.contains { !$0.isEmpty } ? names : []
    }

    /// Pages of each (z, t) slice in channel order, or nil when the sizes do not match the pages.
    func slices(pagesPerChannel samples: Int, pages: Int) -> [[Int]]? {
        // A page with several samples (RGB) holds that many of SizeC's channels.
        guard sizeC % samples == 0 else { return nil }
        let c = sizeC / samples
        let size: [Character: Int] = ["C": c, "Z": sizeZ, "T": sizeT]
        // Sizes come from the file: multiplied without trapping, and they must account for the pages exactly.
        let (cz, o1) = c.multipliedReportingOverflow(by: sizeZ), (czt, o2) = cz.multipliedReportingOverflow(by: sizeT)
        guard !o1, !o2, czt == pages else { return nil }
        var stride: [Character: Int] = [:], s = 1
        for d in order.dropFirst(2) {
            stride[d] = s
            s *= size[d, default: 1]
        }
        return (0..<sizeT).flatMap { t in
            (0..<sizeZ).map { z in
                (0..<c).map { ch in
                    ch * stride["C", default: 0] + z * stride["Z", default: 0] + t * stride["T", default: 0]
                }
            }
        }
    }

    static func element(_ name: String, in xml: String) -> String? {
        guard let r = xml.range(of: "<\(name) ") ?? xml.range(of: "<ome:\(name) ") else { return nil }
        return String(xml[r.lowerBound...].prefix { $0 != ">" })
    }

    static func attribute(_ name: String, in tag: String) -> String? {
        guard let r = tag.range(of: " \(name)=\"") else { return nil }
        return String(tag[r.upperBound...].prefix { $0 != "\"" })
    }
}
